"""A tiny SSE frame reader for tests (reads an aiohttp ClientResponse)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import ClientResponse


async def read_frame(resp: ClientResponse, timeout: float = 5.0) -> dict[str, Any] | None:
    """The next data frame as {"id": int, "event": dict}; comments are skipped; None at EOF."""
    async with asyncio.timeout(timeout):
        while True:
            raw = await resp.content.readuntil(b"\n\n") if not resp.content.at_eof() else b""
            if not raw:
                return None
            frame = _parse(raw.decode())
            if frame is not None:
                return frame


def _parse(text: str) -> dict[str, Any] | None:
    seq, data = None, []
    for line in text.replace("\r\n", "\n").split("\n"):
        if line.startswith("id:"):
            seq = int(line[3:].strip())
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
    if not data:
        return None
    return {"id": seq, "event": json.loads("\n".join(data))}


async def read_until(resp: ClientResponse, predicate, timeout: float = 5.0) -> list[dict]:
    """Frames up to and including the first whose event matches ``predicate``."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await read_frame(resp, timeout)
            if frame is None:
                raise AssertionError(f"stream ended before the expected event; got {frames}")
            frames.append(frame)
            if predicate(frame["event"]):
                return frames


async def read_all(resp: ClientResponse, timeout: float = 5.0) -> list[dict]:
    frames = []
    while (frame := await read_frame(resp, timeout)) is not None:
        frames.append(frame)
    return frames
