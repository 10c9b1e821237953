"""Tools: the tool base (``base.py``), loading an agent folder's ``tools.py`` (``plugins.py``) and
the built-in workspace tools (``builtins.py``)."""
