"""Sessions: the manager of live sessions and what reads across sessions (history, export,
usage, feeds, webhook routing)."""
