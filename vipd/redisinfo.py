"""INFO from a Redis over asyncio streams: the driver's half of a data comparison.

A few RESP round trips (AUTH, INFO replication, INFO keyspace) need no client library: this keeps
redis-py out of the daemon and never blocks the event loop (no thread, no fork). Everything runs
under one timeout; a Redis that does not answer in time, refuses, or answers garbage gives None
and a reason, which the core treats as "unknown" (priority decides).
"""
from __future__ import annotations

import asyncio
import os

from vipd.config import DataSourceConfig
from vipd.core.succession import BadInfo, ReplInfo, parse_info

MAX_REPLY = 1 << 20        # an INFO section is a few kB; anything larger is not a Redis


class RedisError(Exception):
    pass


def resp_command(*words: str) -> bytes:
    out = [b"*%d\r\n" % len(words)]
    for w in words:
        b = w.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


async def read_reply(reader: asyncio.StreamReader) -> str:
    """One RESP reply of the kinds these commands produce: +simple, -error, $bulk."""
    line = await reader.readuntil(b"\r\n")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        raise RedisError(body.decode(errors="replace"))
    if kind == b"$":
        n = int(body)
        if n < 0 or n > MAX_REPLY:
            raise RedisError(f"unexpected bulk length {n}")
        data = await reader.readexactly(n + 2)
        return data[:-2].decode(errors="replace")
    raise RedisError(f"unexpected reply {line[:40]!r}")


async def _exchange(host: str, port: int, password: str | None, *sections: str) -> str:
    """The text of INFO for each section, joined: one pipelined round trip."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        cmds = ([resp_command("AUTH", password)] if password else []) + [
            resp_command("INFO", s) for s in sections]
        writer.write(b"".join(cmds))
        if password:
            await read_reply(reader)
        return "\r\n".join([await read_reply(reader) for _ in sections])
    finally:
        writer.close()


async def _ask(what, host: str, port: int, timeout: float):
    """(what's result, "") or (None, why not), under one timeout."""
    try:
        return await asyncio.wait_for(what, timeout), ""
    except asyncio.TimeoutError:
        return None, f"no answer from {host}:{port} within {timeout:g}s"
    except (OSError, RedisError, BadInfo, ValueError, asyncio.IncompleteReadError,
            asyncio.LimitOverrunError) as e:
        return None, f"{host}:{port}: {e or type(e).__name__}"


async def fetch(host: str, port: int, password: str | None,
                timeout: float) -> tuple[ReplInfo | None, str]:
    """(INFO, "") or (None, why not)."""
    async def info() -> ReplInfo:
        return parse_info(await _exchange(host, port, password, "replication", "keyspace"))
    return await _ask(info(), host, port, timeout)


async def replication(ds: DataSourceConfig, timeout: float) -> tuple[dict | None, str]:
    """Our Redis's INFO replication as {field: value}, or (None, why not): for `vipd status`."""
    async def fields() -> dict:
        text = await _exchange(ds.host, ds.port, password(ds), "replication")
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return await _ask(fields(), ds.host, ds.port, timeout)


def password(ds: DataSourceConfig) -> str | None:
    """Read at each comparison, so a rotated password needs no reload."""
    if ds.password_env:
        return os.environ.get(ds.password_env) or None
    if ds.password_file:
        try:
            with open(ds.password_file) as f:
                return f.read().strip() or None
        except OSError:
            return None
    return None


async def compare_inputs(ds: DataSourceConfig, peer: str) -> tuple[ReplInfo | None,
                                                                  ReplInfo | None, list[str]]:
    """INFO from our Redis and from the peer's, fetched together; with the reasons for any None."""
    pw = password(ds)
    (ours, why_ours), (theirs, why_theirs) = await asyncio.gather(
        fetch(ds.host, ds.port, pw, ds.timeout),
        fetch(peer, ds.peer_redis_port, pw, ds.timeout))
    return ours, theirs, [w for w in (why_ours, why_theirs) if w]


STATUS_TIMEOUT = 0.3      # `vipd status` waits at most this long for the local Redis


async def replications(sources: dict[str, DataSourceConfig]) -> dict[str, dict | None]:
    """Each instance's local Redis INFO replication (None if unreadable), asked together."""
    names = list(sources)
    got = await asyncio.gather(*(replication(sources[n], min(sources[n].timeout, STATUS_TIMEOUT))
                                 for n in names))
    return {n: info for n, (info, _) in zip(names, got)}
