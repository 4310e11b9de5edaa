"""SourceAddressChanged: a new primary / link-local address is the one the core compares in an
equal-priority election and reports as the master address; the state does not change."""
from vipd.core.events import AdvertReceived, Log, SourceAddressChanged, Startup, State
from vipd.core.instance import Instance, RouterParams
from vipd.core.packet import Advert

VIP = "198.51.100.100"


def _master(local: str) -> Instance:
    inst = Instance("web", RouterParams(vrid=51, priority=100, vips=(VIP,), local_addr=local), 0.0)
    inst.handle(Startup(), 0.0)
    inst.handle_timer(inst.next_deadline())
    assert inst.state is State.MASTER
    return inst


def _equal_advert_from(inst: Instance, src: str, now: float) -> list:
    adv = Advert(version=3, vrid=51, priority=100, adver_int_cs=100, addresses=(VIP,))
    return inst.handle(AdvertReceived(adv, src, 255, True), now)


def test_new_source_decides_the_equal_priority_tie_break():
    inst = _master("198.51.100.1")
    _equal_advert_from(inst, "198.51.100.5", 5.0)       # .5 > .1: we would lose ...
    assert inst.state is State.BACKUP
    inst = _master("198.51.100.1")
    actions = inst.handle(SourceAddressChanged("198.51.100.9"), 5.0)
    assert actions == [Log("info", "source address 198.51.100.1 -> 198.51.100.9")]
    assert inst.state is State.MASTER and inst.master_ip == "198.51.100.9"
    _equal_advert_from(inst, "198.51.100.5", 6.0)       # ... but .9 > .5 now: we stay
    assert inst.state is State.MASTER


def test_same_source_is_no_event_and_our_own_advert_is_recognised():
    inst = _master("198.51.100.1")
    assert inst.handle(SourceAddressChanged("198.51.100.1"), 1.0) == []
    inst.handle(SourceAddressChanged(""), 2.0)
    assert inst.params.local_addr == ""
    inst.handle(SourceAddressChanged("198.51.100.7"), 3.0)
    _equal_advert_from(inst, "198.51.100.7", 4.0)       # our own, looped back: not a peer
    assert inst.state is State.MASTER and inst.counters.get("own_advert") == 1


def test_heartbeat_paths_learn_the_new_source_too():
    from vipd.core.paths import HeartbeatPath
    hb = (HeartbeatPath(interface="eth1", peers=("203.0.113.2",), source="203.0.113.1"),)
    inst = Instance("web", RouterParams(vrid=51, priority=100, vips=(VIP,),
                                        local_addr="198.51.100.1", heartbeat=hb), 0.0)
    inst.handle(SourceAddressChanged("198.51.100.9"), 1.0)
    assert inst.paths is not None and inst.paths.local_addr == "198.51.100.9"
