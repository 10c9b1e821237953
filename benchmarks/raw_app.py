"""The raw aiohttp baseline: ``GET /hello`` answers a small JSON object, ``POST /echo``
answers the JSON body it got, ``GET /tail?path=P&limit=N`` answers the last N lines of the
file P as ``{"events": [...]}`` (``tail_body``: seek from the end, parse each line, dump the
list). No middleware, no access log.

    python -m benchmarks.raw_app --port P
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson
from aiohttp import web

HELLO = b'{"status":"ok","version":"0.1.0"}'


async def hello(request: web.Request) -> web.Response:
    return web.Response(body=HELLO, content_type="application/json")


async def echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read(), content_type="application/json")


async def tail(request: web.Request) -> web.Response:
    body = tail_body(Path(request.query["path"]), int(request.query["limit"]))
    return web.Response(body=body, content_type="application/json")


def tail_body(path: Path, limit: int, block: int = 256 * 1024) -> bytes:
    """The last ``limit`` lines of ``path`` as ``{"events": [...]}``: read backward by blocks
    from the end, ``orjson.loads`` each line, ``orjson.dumps`` the list."""
    with path.open("rb") as file:
        end = file.seek(0, 2)
        data = b""
        while data.count(b"\n") <= limit and end > 0:
            start = max(0, end - block)
            file.seek(start)
            data = file.read(end - start) + data
            end = start
    lines = data.splitlines()[-limit:]
    return orjson.dumps({"events": [orjson.loads(line) for line in lines]})


def make_app() -> web.Application:
    app = web.Application()
    app.add_routes([web.get("/hello", hello), web.post("/echo", echo), web.get("/tail", tail)])
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    web.run_app(make_app(), host="127.0.0.1", port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
