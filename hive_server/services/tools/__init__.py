"""Tools: the tool base, plugin loading from agent folders and the built-in tools."""
