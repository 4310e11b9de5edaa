"""What Redis's INFO says about health: shared by the redis built-in check (redis-py) and the
checks/redis program (plain sockets), so that `redis` checks and `checks/redis --synced` mean the
same thing. Pure functions of INFO fields; the callers do the talking.

Lag of a replica (synced): the replica's own INFO cannot tell how far behind it is -- on a
replica master_repl_offset is just its own offset, and while the link is down it knows nothing
newer. So the caller asks the primary the replica follows (master_host:master_port) for its INFO
and check_lag compares the primary's master_repl_offset with the replica's slave_repl_offset.
The primary is read after the replica, so the lag is never under-estimated. If the primary cannot
be asked, or the two are on different replication histories (master_replid differs), the replica
is not in sync: a failback gate must fail closed.
"""
from __future__ import annotations

from vipd.probes import Unhealthy

MAX_LAG_BYTES = 1024 * 1024     # default: bytes of the primary's stream not yet applied


def parse_info(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and not key.startswith("#"):
            fields[key] = value
    return fields


def loading_error(where: str, error: str) -> Unhealthy:
    """The Unhealthy for an error reply to PING."""
    if error.startswith("LOADING"):
        return Unhealthy(f"{where} is still loading its data set")
    return Unhealthy(f"{where}: PING failed: {error}")


def role_of(fields: dict[str, str]) -> str:
    """"master" or "replica" (INFO still says "slave")."""
    return "replica" if fields.get("role") == "slave" else fields.get("role", "unknown")


def check_role(where: str, fields: dict[str, str], want: str | None) -> str:
    role = role_of(fields)
    if want not in (None, "any") and role != want:
        raise Unhealthy(f"{where} is a {role}, expected a {want}")
    return role


def replica_link(fields: dict[str, str], max_lag_seconds: float) -> tuple[str, int]:
    """The (host, port) of the primary of an in-sync replica's link; Unhealthy when the link is
    down, a sync or load is in progress, or the primary has been silent too long."""
    primary = f"{fields.get('master_host')}:{fields.get('master_port')}"
    if fields.get("loading") not in (None, "0"):
        raise Unhealthy(f"replica of {primary} is still loading its data set")
    if fields.get("master_sync_in_progress") != "0":
        raise Unhealthy(f"replica of {primary}: full sync from the primary in progress")
    if fields.get("master_link_status") != "up":
        raise Unhealthy(f"replica of {primary}: link to the primary is "
                        f"{fields.get('master_link_status')}")
    last_io = int(fields.get("master_last_io_seconds_ago", -1))
    if last_io > max_lag_seconds:
        raise Unhealthy(f"replica of {primary}: nothing heard from the primary for {last_io} s "
                        f"(max {max_lag_seconds:g} s)")
    return fields["master_host"], int(fields["master_port"])


def primary_unreachable(host: str, port: int, error: str) -> Unhealthy:
    return Unhealthy(f"cannot read the primary's offset from {host}:{port}: {error}")


def check_lag(fields: dict[str, str], primary_fields: dict[str, str],
              max_lag_bytes: int = MAX_LAG_BYTES) -> str:
    """The in-sync reason, given the replica's INFO and then its primary's; else Unhealthy."""
    primary = f"{fields.get('master_host')}:{fields.get('master_port')}"
    try:
        offset = int(primary_fields["master_repl_offset"])
    except (KeyError, ValueError):
        raise Unhealthy(f"replica of {primary}: the primary reports no master_repl_offset") from None
    replid = primary_fields.get("master_replid", "")
    if replid and replid != fields.get("master_replid"):
        raise Unhealthy(f"replica of {primary}: not on the primary's replication history "
                        f"(replid {fields.get('master_replid')} vs {replid})")
    lag = offset - int(fields["slave_repl_offset"])
    if lag > max_lag_bytes:
        raise Unhealthy(f"replica of {primary}: {lag} bytes behind the primary (max {max_lag_bytes})")
    return (f"replica of {primary}, in sync: {lag} bytes behind, "
            f"last I/O {fields.get('master_last_io_seconds_ago')} s ago")
