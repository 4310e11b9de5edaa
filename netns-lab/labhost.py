"""A member of the lab's segment (a host or the client), as the lab plans it and as everything
that runs or breaks something in its namespace names it."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Host:
    name: str       # "h1" .. "hN", or "c" for the client
    ns: str         # network namespace
    ifname: str     # the host's side of its veth pair
    ip4: str
    ip6: str
    port: str       # the bridge's side, in the bridge namespace
    mac: str
    id: int         # I of hI, 200 for the client: the last byte of ip4
