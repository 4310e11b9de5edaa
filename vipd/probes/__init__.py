"""Built-in health checks (http, tcp, redis, sentinel): probes run on the daemon's event loop.

A probe is an object with ``async run() -> str`` (a one-line reason; raises on unhealthy) and
``async close()``. ``run_probe`` gives it the same contract as a check program: a RunResult whose
returncode is 0 (healthy), 1 (unhealthy) or None (no answer within the timeout).

Nothing here imports redis: redis-py is imported by make_probe only for a redis or sentinel check,
so a daemon that checks nginx never loads it (and need not have it installed).
"""
from __future__ import annotations

import asyncio
import ipaddress
import os
from typing import Callable

from vipd.hooks import RunResult


class Unhealthy(Exception):
    """The reason a probe found the service not healthy (one line, as logged and shown)."""


def split_host_port(text: str) -> tuple[str, int]:
    """"host:port" or "[v6]:port" (as the config normalises them) -> (host, port)."""
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


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


async def run_probe(probe, timeout: float) -> RunResult:
    """Run one probe under its check's timeout, as run_program runs a check program."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        async with asyncio.timeout(timeout):
            output, rc = await probe.run(), 0
    except TimeoutError:
        output, rc = f"{probe.where}: no answer within {timeout:g} s", None
    except Unhealthy as e:
        output, rc = str(e), 1
    except Exception as e:      # a server's error reply or a broken connection: unhealthy
        output, rc = f"{probe.where}: {describe_error(e)}", 1
    return RunResult(rc, output, loop.time() - start)


def read_password(builtin) -> str | None:
    """The password from the environment variable or root-only file the check names (the config
    text never holds one); scriptsec has already refused a config whose source is missing."""
    if getattr(builtin, "password_env", None):
        return os.environ.get(builtin.password_env)
    if getattr(builtin, "password_file", None):
        with open(builtin.password_file, encoding="utf-8") as f:
            return f.read().strip()
    return None


def make_probe(cfg, wake: Callable[[], None]):
    """The probe for a built-in check's config. ``wake`` asks the runner to run it now (the
    sentinel probe calls it when Sentinel announces a new primary)."""
    from vipd.config import HttpCheck, RedisCheck, SentinelCheck, TcpCheck
    spec = cfg.builtin
    if isinstance(spec, HttpCheck):
        from vipd.probes.http import HttpProbe
        return HttpProbe(spec.http, spec.expect_status, spec.expect_body, spec.insecure)
    if isinstance(spec, TcpCheck):
        from vipd.probes.tcp import TcpProbe
        return TcpProbe(*split_host_port(spec.tcp))
    if isinstance(spec, RedisCheck):
        from vipd.probes.redisprobe import RedisProbe
        host, port = split_host_port(spec.redis)
        return RedisProbe(host, port, read_password(spec), spec.role, spec.synced, spec.max_lag)
    if isinstance(spec, SentinelCheck):
        from vipd.probes.sentinel import SentinelProbe
        return SentinelProbe([split_host_port(s) for s in spec.sentinels], spec.master_name,
                             read_password(spec), cfg.timeout, wake)
    raise TypeError(f"not a built-in check: {spec!r}")
