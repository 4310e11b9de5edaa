"""Whose Redis data is newer: the pure comparison behind a data-aware split-brain decision.

Redis's own replication history answers it (PSYNC2, Redis >= 4.0):

- A replica shares its primary's replication ID (``master_replid``); its offset trails.
- A replica promoted with ``REPLICAOF NO ONE`` takes a new ``master_replid`` and keeps the old one
  as ``master_replid2``, with ``second_repl_offset`` = its offset at promotion + 1.

So when two primaries meet after a split, the one whose ``master_replid2`` is the other's
``master_replid`` was promoted from the other's history later: it is the *successor*, and what the
other accepted after that point is what the split cost (bounded by min-replicas-to-write). Two
nodes with the same ``master_replid`` have not diverged (one replicates the other): no data
conflict, the VRRP priority decides. Histories that are unrelated (a Redis restarted without its
data gets a fresh ID) are decided by who holds data at all: an empty data set never wins over a
full one. Anything else is UNKNOWN and the caller falls back to priority.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

NO_REPLID = "0" * 40       # what Redis reports as master_replid2 when there is none


class Verdict(str, enum.Enum):
    OURS_NEWER = "ours-newer"
    PEER_NEWER = "peer-newer"
    SAME = "same"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value

    def flipped(self) -> Verdict:
        return _FLIP[self]


_FLIP = {Verdict.OURS_NEWER: Verdict.PEER_NEWER, Verdict.PEER_NEWER: Verdict.OURS_NEWER,
         Verdict.SAME: Verdict.SAME, Verdict.UNKNOWN: Verdict.UNKNOWN}


@dataclass(frozen=True)
class ReplInfo:
    """The INFO replication fields that matter, plus whether the data set holds any key."""
    role: str                       # "master" | "slave" (Redis's word)
    master_replid: str
    master_replid2: str = NO_REPLID
    second_repl_offset: int = -1
    master_repl_offset: int = 0
    keys: int = 0                   # sum of keys over all databases (INFO keyspace)

    @property
    def empty(self) -> bool:
        return self.keys == 0

    def short(self) -> str:
        """For reasons and logs: role, ID prefix and offset."""
        return f"{self.role} {self.master_replid[:8]}@{self.master_repl_offset} keys={self.keys}"


class BadInfo(ValueError):
    """INFO text without the fields a comparison needs."""


def parse_info(text: str) -> ReplInfo:
    """ReplInfo from the text of ``INFO replication`` followed by ``INFO keyspace``."""
    fields: dict[str, str] = {}
    keys = 0
    for line in text.splitlines():
        name, sep, value = line.strip().partition(":")
        if not sep or name.startswith("#"):
            continue
        if name.startswith("db") and name[2:].isdigit():
            # db0:keys=12,expires=0,avg_ttl=0
            for part in value.split(","):
                k, _, v = part.partition("=")
                if k == "keys" and v.isdigit():
                    keys += int(v)
        else:
            fields[name] = value
    try:
        return ReplInfo(role=fields["role"], master_replid=fields["master_replid"],
                        master_replid2=fields.get("master_replid2", NO_REPLID),
                        second_repl_offset=int(fields.get("second_repl_offset", "-1")),
                        master_repl_offset=int(fields["master_repl_offset"]), keys=keys)
    except (KeyError, ValueError) as e:
        raise BadInfo(f"INFO replication lacks or garbles {e}") from None


@dataclass(frozen=True)
class Comparison:
    verdict: Verdict
    why: str


def compare(ours: ReplInfo | None, peer: ReplInfo | None) -> Comparison:
    """Whose data is newer, ours or the peer's; symmetric: compare(b, a) is the flip."""
    if ours is None or peer is None:
        return Comparison(Verdict.UNKNOWN, "no INFO from " + ("our" if ours is None else "the peer's")
                          + " Redis")
    if ours.master_replid == peer.master_replid:
        return Comparison(Verdict.SAME, f"one history ({ours.master_replid[:8]}): not diverged")
    peer_succeeds = peer.master_replid2 == ours.master_replid != NO_REPLID
    ours_succeeds = ours.master_replid2 == peer.master_replid != NO_REPLID
    if peer_succeeds and ours_succeeds:
        return Comparison(Verdict.UNKNOWN, "each Redis claims to succeed the other")
    if peer_succeeds:
        return Comparison(Verdict.PEER_NEWER, f"peer's Redis was promoted from ours at offset "
                          f"{peer.second_repl_offset} ({peer.short()}; ours {ours.short()})")
    if ours_succeeds:
        return Comparison(Verdict.OURS_NEWER, f"our Redis was promoted from the peer's at offset "
                          f"{ours.second_repl_offset} (ours {ours.short()}; peer {peer.short()})")
    if ours.empty != peer.empty:
        if ours.empty:
            return Comparison(Verdict.PEER_NEWER, f"our Redis is empty, the peer's holds "
                              f"{peer.keys} keys (unrelated histories)")
        return Comparison(Verdict.OURS_NEWER, f"the peer's Redis is empty, ours holds {ours.keys}"
                          " keys (unrelated histories)")
    return Comparison(Verdict.UNKNOWN, f"unrelated histories (ours {ours.short()}; peer "
                      f"{peer.short()})")
