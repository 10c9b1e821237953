"""The raw aiohttp baseline: ``GET /hello`` answers a small JSON object, ``POST /echo``
answers the JSON body it got. No middleware, no access log.

    python -m benchmarks.raw_app --port P
"""

from __future__ import annotations

import argparse
import sys

from aiohttp import web

HELLO = b'{"status":"ok","version":"0.1.0"}'


async def hello(request: web.Request) -> web.Response:
    return web.Response(body=HELLO, content_type="application/json")


async def echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read(), content_type="application/json")


def make_app() -> web.Application:
    app = web.Application()
    app.add_routes([web.get("/hello", hello), web.post("/echo", echo)])
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    web.run_app(make_app(), host="127.0.0.1", port=args.port, access_log=None, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
