"""A session's folder is always one child of the sessions folder: any id is checked once, and
one that is not a single safe segment is refused, never joined."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hive_server.errors.sessions import InvalidSessionId
from hive_server.models.session import is_safe_id
from hive_server.services.sessions.store import SessionStore

STORE = SessionStore(Path("/nonexistent/home"))  # building paths touches no disk
TRICKY = ["", ".", "..", "./a", "a/b", "a/../b", "/etc", "..a", "a..", ".hidden", "a\\b", "a\0",
          "x" * 129]


@given(st.one_of(st.text(max_size=140), st.sampled_from(TRICKY),
                 st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-/]{0,20}", fullmatch=True)))
def test_a_path_is_a_direct_child_or_the_id_is_refused(value: str) -> None:
    if is_safe_id(value):
        path = STORE.path(value)
        assert path.parent == STORE.root and path.name == value
    else:
        with pytest.raises(InvalidSessionId):
            STORE.path(value)
