"""Catalog: agent folders and queen profiles on disk, and the watcher that reloads them."""
