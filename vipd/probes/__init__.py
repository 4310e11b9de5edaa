"""Built-in health checks (http, tcp, redis, sentinel) and what they share with checks/.

A probe is an object with ``async run() -> str`` (a one-line reason; raises on unhealthy) and
``async close()``; vipd/probes/run.py runs one under its check's timeout. What a server's answer
means (httpmsg.py, redisinfo.py) is pure code that the checks/ programs use too, over their own
plain blocking sockets, so a program check and a built-in check judge a service the same way.

This package's own module imports only what a check program can afford at every start-up: no
asyncio, no redis.
"""
from __future__ import annotations



class Unhealthy(Exception):
    """The reason a probe found the service not healthy (one line, as logged and shown)."""


def split_host_port(text: str) -> tuple[str, int]:
    """"host:port" or "[v6]:port" (as the config normalises them) -> (host, port)."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def describe_error(e: BaseException) -> str:
    """One line for an error raised while talking to a server (a client library's wrapper,
    like redis-py's ConnectionError, is seen through to the OS error beneath it)."""
    while not isinstance(e, OSError) and isinstance(e.__cause__ or e.__context__, OSError):
        e = e.__cause__ or e.__context__
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__
