"""A small HTTP/1.1 load client on raw sockets, run as its own process (never the server's
event loop): ``conns`` keep-alive connections, each sending ``depth`` pipelined requests,
then reading as many answers, for ``seconds``.

    python -m benchmarks.load --port P --path /api/health [--method POST --body '{}']
        [--header 'Authorization: Bearer T'] [--conns 16] [--depth 4] [--seconds 3]

Prints one JSON object: answers, errors (non-2xx, with their statuses), answers per second
and p50/p99 of the time from sending a batch to reading each answer, in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter


def build_request(args: argparse.Namespace) -> bytes:
    body = args.body.encode()
    lines = [f"{args.method} {args.path} HTTP/1.1", f"Host: 127.0.0.1:{args.port}",
             *args.header]
    if body or args.method in ("POST", "PUT", "PATCH"):
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_answer(reader: asyncio.StreamReader) -> int:
    """Read one answer (Content-Length framed); return its status."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    at = lower.find(b"content-length:")
    if at < 0:
        raise RuntimeError(f"answer without Content-Length: {head[:200]!r}")
    end = lower.find(b"\r\n", at)
    await reader.readexactly(int(lower[at + 15:end]))
    return status


async def connection(args: argparse.Namespace, request: bytes, deadline: float,
                     latencies: list[float], statuses: Counter[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
    batch = request * args.depth
    try:
        while time.perf_counter() < deadline:
            sent = time.perf_counter()
            writer.write(batch)
            for _ in range(args.depth):
                statuses[await read_answer(reader)] += 1
                latencies.append(time.perf_counter() - sent)
    finally:
        writer.close()


async def run(args: argparse.Namespace) -> dict[str, object]:
    request = build_request(args)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    started = time.perf_counter()
    deadline = started + args.seconds
    await asyncio.gather(*(connection(args, request, deadline, latencies, statuses)
                           for _ in range(args.conns)))
    elapsed = time.perf_counter() - started
    answers = sum(statuses.values())
    ok = sum(count for status, count in statuses.items() if 200 <= status < 300)
    latencies.sort()
    return {
        "answers": answers, "ok": ok, "errors": answers - ok,
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "seconds": elapsed, "ok_per_s": ok / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", default="")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3.0)
    print(json.dumps(asyncio.run(run(parser.parse_args(argv)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
