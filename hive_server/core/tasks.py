"""``cancel_and_wait``: how an owner ends the tasks it started.

The pattern it replaces, ``task.cancel()`` then ``with suppress(CancelledError): await
task``, has two faults. It also swallows a cancellation of the *caller*: a ``stop()`` cut
short by the shutdown grace while it waits went on as if nothing had happened (and its
task's cancel request was left counted). And over several tasks (``gather`` under the same
``suppress``) it returned at the first cancelled one, before the others had ended.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancel ``tasks`` (None: skipped) and return once every one has ended.

    A task's own cancellation is the expected end and is not raised. A task that ended with
    an error instead raises it here (the first one, in the order given), as awaiting it
    would. A cancellation of the caller while it waits is raised: the tasks have been asked
    to end and go on ending without it.
    """
    owned = [task for task in tasks if task is not None]
    for task in owned:
        task.cancel()
    if not owned:
        return
    await asyncio.wait(owned)
    for task in owned:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error
