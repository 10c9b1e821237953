"""Running out of file descriptors: recognising it, and undoing a half-made folder anyway.

Blocking: call ``remove_new_folder`` through ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path

OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE})


def out_of_descriptors(exc: BaseException) -> bool:
    """Whether ``exc`` is the process (EMFILE) or the system (ENFILE) out of descriptors."""
    return isinstance(exc, OSError) and exc.errno in OUT_OF_DESCRIPTORS


def remove_new_folder(folder: Path, names: tuple[str, ...], subfolders: tuple[str, ...]) -> None:
    """Remove a folder this process just made. ``shutil.rmtree`` needs descriptors to list
    folders; when there are none, the files it can hold (``names``) are unlinked and its
    (empty) ``subfolders`` removed by path, which needs no descriptor."""
    shutil.rmtree(folder, ignore_errors=True)
    if not folder.exists():
        return
    for name in names:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(folder / name)
    for name in (*subfolders, ""):
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(folder / name if name else folder)
