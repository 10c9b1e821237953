"""Journal: a session's seq, log, bus and meta, and what it keeps as events are emitted."""
