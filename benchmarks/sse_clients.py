"""SSE subscribers in their own process: ``n`` connections read frames; each frame carries
``@@<time.monotonic() at publish>@@`` and the delay to its arrival is recorded. A frame
with ``@@END@@`` ends a connection; when all have ended it prints one JSON object (p50 and
p99 publish -> client in ms, frames, connections).

    python -m benchmarks.sse_clients --port P --path /events --n 100 [--header H]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

MARK = b"@@"
END = b"@@END@@"


class Subscriber(asyncio.Protocol):
    def __init__(self, request: bytes, latencies: list[float], done: asyncio.Future[None],
                 ready: asyncio.Future[None]):
        self.request, self.latencies, self.done, self.ready = request, latencies, done, ready
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if not self.ready.done():
            self.ready.set_result(None)
        buffer = self.buffer + data
        cut = buffer.rfind(b"\n\n")
        if cut < 0:
            self.buffer = buffer
            return
        frames, self.buffer = buffer[:cut], buffer[cut + 2:]
        at = frames.find(MARK)
        while at >= 0:
            close = frames.find(MARK, at + 2)
            value = frames[at + 2:close]
            if value == b"END":
                if not self.done.done():
                    self.done.set_result(None)
                return
            self.latencies.append(now - float(value))
            at = frames.find(MARK, close + 2)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def run(args: argparse.Namespace) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    lines = [f"GET {args.path} HTTP/1.1", f"Host: 127.0.0.1:{args.port}",
             "Accept: text/event-stream", *args.header]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    latencies: list[float] = []
    dones, readies = [], []
    for _ in range(args.n):
        done, ready = loop.create_future(), loop.create_future()
        await loop.create_connection(lambda d=done, r=ready: Subscriber(
            request, latencies, d, r), "127.0.0.1", args.port)
        dones.append(done)
        readies.append(ready)
    await asyncio.gather(*readies)
    print("subscribed", flush=True)
    await asyncio.wait_for(asyncio.gather(*dones), args.timeout)
    latencies.sort()
    return {"connections": args.n, "frames": len(latencies),
            "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=600.0)
    print(json.dumps(asyncio.run(run(parser.parse_args(argv)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
