"""A detached replica, for `vipd status` (issue 8, "status says why").

A Redis pair's local Redis is *detached* when it is a replica that does not follow its primary:
- it refused to follow: the BACKUP hook exited with 75 (EX_TEMPFAIL), as redis-role does when the
  new master's Redis is an empty primary and ours holds keys (a full sync would wipe them);
- its link to its primary is down and no sync is under way: the primary is unreachable, or it
  restarted and has not linked since (an orphan, e.g. while the peer host is down).
A replica in the middle of a full sync is not detached: it is catching up. Pure: the driver reads
the local Redis's INFO replication (data_source) when status is asked for and passes it here.
"""
from __future__ import annotations

# A BACKUP hook that exits with this refuses to make the local Redis follow the new master
# (the same code as a refused promotion: the role change is refused, nothing was changed).
REFUSE_FOLLOW = 75


def detached_replica(info: dict | None, hook: dict | None) -> dict | None:
    """{"reason", "source"} when the local Redis is a detached replica, else None.

    info: INFO replication fields of the local Redis (None when it could not be read);
    hook: the instance's last hook run ({"state", "exit", "output", ...}) or None."""
    if hook and hook.get("state") == "BACKUP" and hook.get("exit") == REFUSE_FOLLOW:
        return {"reason": hook.get("output") or f"BACKUP hook exit {REFUSE_FOLLOW}",
                "source": "hook"}
    if not info or info.get("role") != "slave" or info.get("master_link_status") == "up":
        return None
    if info.get("master_sync_in_progress") == "1":
        return None
    primary = f"{info.get('master_host', '?')}:{info.get('master_port', '?')}"
    down = info.get("master_link_down_since_seconds", "")
    if down == "-1":
        why = f"replica of {primary}, not linked since it started (an orphan)"
    elif down.lstrip("-").isdigit():
        why = f"replica of {primary}, link down for {down} s"
    else:
        why = f"replica of {primary}, link down"
    return {"reason": why, "source": "redis"}
