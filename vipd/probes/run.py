"""Runs a built-in check's probe with the contract of a check program, and builds probes.

run_probe returns a RunResult whose returncode is 0 (healthy), 1 (unhealthy) or None (no answer
within the timeout), like run_program's. redis-py is imported by make_probe only for a redis or
sentinel check, so a daemon that checks nginx never loads it (and need not have it installed).
"""
from __future__ import annotations

import asyncio
import os
from typing import Callable

from vipd.hooks import RunResult
from vipd.probes import Unhealthy, describe_error, split_host_port


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
    from vipd.confchecks import HttpCheck, RedisCheck, SentinelCheck, TcpCheck
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
