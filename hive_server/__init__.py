"""hive_server: a local-first, event-driven agent host server."""

__version__ = "0.1.0"
