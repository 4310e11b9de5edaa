"""The applier's ordered queue (vipd/applier.py, issue 9): one instance's role changes never
interleave, whichever of its netlink requests is slow, and another instance is not held up by it.

Real cores and Runtimes with a fake clock; the kernel side is a stand-in whose requests suspend
until the test lets them finish (a slow netlink answer), recording every request, GARP and advert
in one log. Driven through both orders: a slow VIP add while the instance leaves MASTER, and a slow
VIP delete while it becomes MASTER again."""
import asyncio

from vipd.applier import Applier
from vipd.config import loads
from vipd.core.events import Startup, State
from vipd.core.packet import Advert
from vipd.runtime import Runtime

ME, PEER = "198.51.100.1", "198.51.100.2"
VIPS = {"web": "198.51.100.100", "api": "198.51.100.101"}
VRIDS = {"web": 51, "api": 52}


def config(name: str):
    return loads(f'''[[instance]]
name = "{name}"
interface = "eth0"
vrid = {VRIDS[name]}
priority = 100
advert_interval = 1
garp_repeat = 1
vips = ["{VIPS[name]}/24"]
''').instance(name)


class SlowNetlink:
    """add_vip/del_vip stand-in: a request of an instance in ``slow`` waits for its gate."""

    def __init__(self, log: list) -> None:
        self.log = log
        self.addrs: set[str] = set()      # what the interface holds
        self.gates: dict[str, asyncio.Event] = {}

    async def _request(self, what: str, address) -> bool:
        ip = str(address.ip)
        name = next(n for n, v in VIPS.items() if v == ip)
        self.log.append((name, what, "start"))
        gate = self.gates.get(name)
        if gate is not None:
            await gate.wait()
        self.log.append((name, what, "done"))
        had = ip in self.addrs
        (self.addrs.add if what == "add" else self.addrs.discard)(ip)
        return had != (what == "add")

    async def add_vip(self, dev, address, label=None) -> bool:
        return await self._request("add", address)

    async def del_vip(self, dev, address) -> bool:
        return await self._request("del", address)


class Wire:
    """An advert socket and a GARP announcer that log what leaves, by instance."""

    def __init__(self, log: list) -> None:
        self.log = log

    def send(self, payload: bytes, dst=None, src=None) -> None:
        if dst is None:        # a GARP frame: the ARP target address names the instance
            ip = ".".join(str(b) for b in payload[38:42])
            self.log.append((next(n for n, v in VIPS.items() if v == ip), "garp"))
        else:                  # an advert: VRID at byte 1, priority at byte 2 (RFC 5798 5.1)
            name = next(n for n, v in VRIDS.items() if v == payload[1])
            self.log.append((name, "advert", payload[2]))


class Interfaces:
    def __init__(self, log: list) -> None:
        self.nl = SlowNetlink(log)
        self.wire = Wire(log)

    def socket(self, ifname, family):
        return self.wire

    def announcer(self, dev):
        return self.wire

    @staticmethod
    def mac(dev) -> bytes:
        return b"\x02\x00\x00\x00\x00\x01"


class Observer:
    @staticmethod
    def transition(*args) -> None:
        pass


def setup(loop):
    log: list = []
    ifaces = Interfaces(log)
    runtimes = {n: Runtime(config(n), ME, 0.0) for n in VIPS}
    applier = Applier(loop, runtimes, ifaces, {}, None, Observer(), lambda: None,
                      lambda rt, actions: applier.apply(rt, actions))
    for rt in runtimes.values():
        applier.apply(rt, rt.core.handle(Startup(), 0.0))
    return log, ifaces, runtimes, applier


def become_master(applier, rt) -> float:
    now = rt.core.next_deadline()
    applier.apply(rt, rt.core.handle_timer(now))
    assert rt.core.state is State.MASTER
    return now


def hear_better_master(applier, rt, now: float) -> None:
    adv = Advert(version=3, vrid=rt.cfg.vrid, priority=200, adver_int_cs=100,
                 addresses=(VIPS[rt.name],))
    applier.apply(rt, rt.core.on_advert(adv, PEER, 255, True, now))
    assert rt.core.state is State.BACKUP


async def turns(n: int = 20) -> None:
    """Lets the loop run what can run now (no wall-clock wait: nothing here sleeps)."""
    for _ in range(n):
        await asyncio.sleep(0)


def of(log: list, name: str, start: int = 0) -> list:
    return [e[1:] for e in log[start:] if e[0] == name]


def test_slow_vip_add_then_leaving_master_does_not_interleave():
    async def main():
        log, ifaces, rts, applier = setup(asyncio.get_running_loop())
        web, api = rts["web"], rts["api"]
        ifaces.nl.gates["web"] = gate = asyncio.Event()
        now = become_master(applier, web)
        await turns()
        assert of(log, "web") == [("add", "start")]        # the add hangs in the kernel,
        now = web.core.next_deadline()                     # the next advert falls due
        applier.apply(web, web.core.handle_timer(now))     # (the hot path: behind the add)
        hear_better_master(applier, web, now + 0.01)       # ... and the role goes meanwhile
        become_master(applier, api)
        await turns()
        # web's delete waits for its add; api's whole takeover is done meanwhile
        assert of(log, "web") == [("add", "start")]
        assert of(log, "api") == [("add", "start"), ("add", "done"), ("garp",),
                                  ("advert", 100)]
        gate.set()
        await applier.idle()
        # the core's order: add, the takeover's advert, the next one, the parting advert, then
        # the delete; no GARP for a VIP of a role already lost
        assert of(log, "web") == [("add", "start"), ("add", "done"), ("advert", 100),
                                  ("advert", 100), ("advert", 100), ("del", "start"),
                                  ("del", "done")]
        assert ifaces.nl.addrs == {VIPS["api"]} and not web.vips_on   # the last role's state
    asyncio.run(main())


def test_slow_vip_delete_then_becoming_master_again_does_not_interleave():
    async def main():
        log, ifaces, rts, applier = setup(asyncio.get_running_loop())
        web, api = rts["web"], rts["api"]
        now = become_master(applier, web)
        await applier.idle()
        assert ifaces.nl.addrs == {VIPS["web"]}
        mark = len(log)
        ifaces.nl.gates["web"] = gate = asyncio.Event()
        hear_better_master(applier, web, now + 0.01)       # the delete hangs ...
        await turns()
        become_master(applier, web)                        # ... and the role comes back
        become_master(applier, api)
        await turns()
        assert of(log, "web", mark) == [("advert", 100), ("del", "start")]
        assert of(log, "api", mark) == [("add", "start"), ("add", "done"), ("garp",),
                                        ("advert", 100)]
        gate.set()
        await applier.idle()
        # delete done before the add starts; GARP and the first advert after the VIP is up
        assert of(log, "web", mark) == [("advert", 100), ("del", "start"), ("del", "done"),
                                        ("add", "start"), ("add", "done"), ("garp",),
                                        ("advert", 100)]
        assert ifaces.nl.addrs == {VIPS["web"], VIPS["api"]} and web.vips_on
    asyncio.run(main())


def test_instances_finishing_in_one_loop_turn_leave_nothing_for_idle_to_spin_on():
    """Two instances' slow adds finish in the same loop turn. A finished worker must be gone
    from ``workers`` at once: idle() awaits them, and awaiting a finished task returns without
    yielding, so one left for a later callback to remove spins the loop for ever (seen: a
    SIGTERM'd daemon never stopped)."""
    async def main():
        log, ifaces, rts, applier = setup(asyncio.get_running_loop())
        gate = asyncio.Event()
        for rt in rts.values():
            ifaces.nl.gates[rt.name] = gate
            become_master(applier, rt)
        await turns()
        assert set(applier.workers) == {"web", "api"}
        gate.set()
        for _ in range(20):
            await asyncio.sleep(0)
            assert not [n for n, t in applier.workers.items() if t.done()]
        assert not applier.workers and not applier.queued
        await applier.idle()
        assert ifaces.nl.addrs == set(VIPS.values())
    asyncio.run(main())
