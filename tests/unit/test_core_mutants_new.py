"""What an operator sees from heartbeat paths, sync groups and track files, pinned exactly (issue
13: the mutmut survivors of vipd/core/paths.py, syncgroup.py, tracking.py's track-file half and
instance on_advert / _group_command that docs/testing.md listed as "no test yet"). Pure core,
fake clock: status JSON key by key, log texts and levels, history entries and their cap, window
boundaries at exactly the edge, track-file parsing edges and integer results."""
import pytest

from vipd.core.events import AdvertReceived, GroupCommand, Log, Startup, State
from vipd.core.instance import Instance, RouterParams
from vipd.core.packet import Advert
from vipd.core.paths import HeartbeatPath, PathBook
from vipd.core.syncgroup import Demote, GroupNotify, Promote, SyncGroup, Yield, command
from vipd.core.tracking import track_file_effect, track_file_value

VIP = "198.51.100.100"
ME, PEER = "198.51.100.1", "198.51.100.2"
P1 = HeartbeatPath("eth1", ("203.0.113.2",), "203.0.113.1")
P2 = HeartbeatPath("eth2", ("203.0.113.66",), "203.0.113.65")


def logs(actions):
    return [(a.level, a.message) for a in actions if isinstance(a, Log)]


# ---- paths.py ------------------------------------------------------------------------------

def test_the_vip_segment_is_named_main_when_its_interface_is_unset():
    assert PathBook("", (P1,), 1.0, 0.0).names == ("main", "eth1")
    assert PathBook("eth0", (P1,), 1.0, 0.0).names == ("eth0", "eth1")


def test_is_peer_uses_each_paths_own_peer_list():
    book = PathBook("eth0", (P1, P2), 1.0, 0.0)
    assert book.is_peer(1, "203.0.113.2") and not book.is_peer(1, "203.0.113.66")
    assert book.is_peer(2, "203.0.113.66") and not book.is_peer(2, "203.0.113.2")


def test_status_json_key_by_key_with_two_paths():
    book = PathBook("eth0", (P1, P2), 1.0, 0.0)
    acts: list = []
    book.heard(0, PEER, 100, 1.0, 3.0, acts)
    book.heard(2, "203.0.113.66", 90, 1.5, 3.0, acts)
    assert book.status(2.0, 3.0) == [
        {"interface": "eth0", "state": "ok", "received": 1, "last_heard_age": 1.0},
        {"interface": "eth1", "state": "silent", "received": 0, "last_heard_age": None,
         "peers": ["203.0.113.2"], "source": "203.0.113.1"},
        {"interface": "eth2", "state": "ok", "received": 1, "last_heard_age": 0.5,
         "peers": ["203.0.113.66"], "source": "203.0.113.65"},
    ]
    # the age is rounded to milliseconds
    assert book.status(2.0 + 1 / 3, 3.0)[0]["last_heard_age"] == 1.333


def test_a_path_heard_exactly_silent_after_ago_is_still_ok():
    book = PathBook("eth0", (P1,), 1.0, 0.0)
    book.heard(0, PEER, 100, 1.0, 3.0, [])
    book.heard(1, "203.0.113.2", 100, 1.0, 3.0, [])
    assert book.states(4.0, 3.0) == ["ok", "ok"]                 # exactly at the edge
    assert book.states(4.25, 3.0) == ["silent", "silent"]        # past it


def test_degraded_starts_only_past_silent_after_and_is_logged_once_as_a_warning():
    book = PathBook("eth0", (P1,), 1.0, 0.0)
    acts: list = []
    book.heard(0, PEER, 100, 1.0, 3.0, acts)           # eth1 silent since delivering_since = 1.0
    book.heard(0, PEER, 100, 4.0, 3.0, acts)           # eth1 silent for exactly 3.0: not yet
    assert book.states(4.0, 3.0) == ["ok", "silent"] and acts == []
    book.heard(0, PEER, 100, 4.5, 3.0, acts)
    assert book.states(4.5, 3.0) == ["ok", "degraded"]
    assert logs(acts) == [("warning", "heartbeat path eth1 degraded: no advert for 3.500s"
                                      " while eth0 delivers")]
    book.heard(0, PEER, 100, 5.0, 3.0, acts)           # said once
    assert len(acts) == 1
    book.heard(1, "203.0.113.2", 100, 5.5, 3.0, acts)
    assert logs(acts[1:]) == [("info", "heartbeat path eth1 delivers adverts again")]
    assert book.status(5.5, 3.0)[1]["state"] == "ok"


def test_after_every_path_was_silent_the_silence_is_measured_from_the_first_new_advert():
    book = PathBook("eth0", (P1,), 1.0, 0.0)
    book.heard(0, PEER, 100, 1.0, 3.0, [])
    # 4.0 - 1.0 == silent_after: eth0 still counts as delivering, so no restart of the clock
    book.heard(0, PEER, 100, 4.0, 3.0, [])
    assert book.states(4.5, 3.0) == ["ok", "degraded"]
    other = PathBook("eth0", (P1,), 1.0, 0.0)
    other.heard(0, PEER, 100, 1.0, 3.0, [])
    other.heard(0, PEER, 100, 4.25, 3.0, [])           # all were silent: measured from 4.25
    assert other.states(4.5, 3.0) == ["ok", "silent"]
    assert other.states(7.25, 3.0) == ["ok", "silent"]     # exactly silent_after: not yet
    assert other.states(7.5, 3.0) == ["silent", "silent"]


@pytest.mark.parametrize("gap,learned", [(0.25, True), (0.375, False)])
@pytest.mark.parametrize("main_first", [True, False])
def test_path_peer_is_paired_with_a_vip_segment_advert_within_a_quarter_interval(gap, learned,
                                                                                main_first):
    book = PathBook("eth0", (P1,), 1.0, 0.0, local_addr=ME)
    if main_first:
        book.heard(0, PEER, 100, 1.0, 3.0, [])
        src, origin = book.heard(1, "203.0.113.2", 100, 1.0 + gap, 3.0, [])
    else:
        book.heard(1, "203.0.113.2", 100, 1.0, 3.0, [])
        book.heard(0, PEER, 100, 1.0 + gap, 3.0, [])
        src, origin = book.heard(1, "203.0.113.2", 100, 5.0, 30.0, [])
    if learned:
        assert (src, origin) == (PEER, None)
    else:
        assert src == "203.0.113.2" and origin.peer == "203.0.113.2"
        assert origin.own == "203.0.113.1"


ORDER_WARNING = ("warning", "heartbeat path eth2: peer 203.0.113.66 is 198.51.100.2 on eth0, but"
                 " the two addresses are ordered unlike ours on the two segments; number the"
                 " path in the same order, or equal-priority masters may both yield once")


@pytest.mark.parametrize("local,path,peer,said", [
    # our VIP-segment address is the higher, our eth2 address the lower: orders disagree
    ("198.51.100.9", 2, "203.0.113.66", [ORDER_WARNING]),
    (ME, 2, "203.0.113.66", []),            # the same order on both segments: nothing to say
    # peer above us on eth1 and on eth0 (eth2's source .65 would give the opposite order)
    (ME, 1, "203.0.113.2", []),
    ("", 2, "203.0.113.66", []),            # no local address yet: nothing to compare
])
def test_the_pairing_warning_names_the_path_and_both_addresses(local, path, peer, said):
    book = PathBook("eth0", (P1, P2), 1.0, 0.0, local_addr=local)
    acts: list = []
    book.heard(0, PEER, 100, 1.0, 3.0, acts)
    book.heard(path, peer, 100, 1.0, 3.0, acts)
    assert logs(acts) == said


def test_different_priorities_in_the_same_instant_are_not_paired():
    book = PathBook("eth0", (P1,), 1.0, 0.0, local_addr=ME)
    book.heard(0, PEER, 100, 1.0, 3.0, [])
    src, origin = book.heard(1, "203.0.113.2", 99, 1.0, 3.0, [])
    assert src == "203.0.113.2" and origin is not None


@pytest.mark.parametrize("path_prio,master", [(100, PEER), (90, "203.0.113.2")])
def test_instance_pairs_the_path_peer_by_the_adverts_priority(path_prio, master):
    params = RouterParams(vrid=51, priority=50, adver_int_cs=100, vips=(VIP,), local_addr=ME,
                          interface="eth0", heartbeat=(P1,))
    inst = Instance("web", params, 0.0)
    inst.handle(Startup(), 0.0)

    def rx(path, src, now, prio):
        adv = Advert(version=3, vrid=51, priority=prio, adver_int_cs=100, addresses=(VIP,))
        return inst.handle(AdvertReceived(adv, src, 255, path == 0, path), now)
    rx(0, PEER, 1.0, 100)
    rx(1, "203.0.113.2", 1.0, path_prio)       # same instant: paired only at equal priority
    assert inst.master_ip == master


def test_a_book_without_a_local_address_says_so():
    assert PathBook("eth0", (P1, P2), 1.0, 0.0).local_addr == ""


def test_an_unpaired_path_advert_compares_addresses_on_its_own_path():
    book = PathBook("eth0", (P1, P2), 1.0, 0.0, local_addr=ME)
    assert book.heard(1, "203.0.113.2", 100, 1.0, 3.0, [])[1].own == "203.0.113.1"
    assert book.heard(2, "203.0.113.66", 90, 1.0, 3.0, [])[1].own == "203.0.113.65"


def test_degraded_names_every_path_that_still_delivers_and_is_said_again_after_recovery():
    book = PathBook("eth0", (P1, P2), 1.0, 0.0)
    acts: list = []
    for t in (1.0, 2.0, 3.0, 4.0, 4.5):
        book.heard(0, PEER, 100, t, 3.0, acts)
        book.heard(2, "203.0.113.66", 100, t, 3.0, acts)
    assert logs(acts) == [("warning", "heartbeat path eth1 degraded: no advert for 3.500s"
                                      " while eth0, eth2 delivers")]
    book.heard(1, "203.0.113.2", 100, 5.0, 3.0, acts)
    assert logs(acts[1:]) == [("info", "heartbeat path eth1 delivers adverts again")]
    book.heard(1, "203.0.113.2", 100, 5.5, 3.0, acts)         # back to normal: nothing more
    assert len(acts) == 2
    for t in (6.0, 7.0, 8.0, 9.0):
        book.heard(0, PEER, 100, t, 3.0, acts)
    assert logs(acts[2:]) == [("warning", "heartbeat path eth2 degraded: no advert for 3.500s"
                                          " while eth0, eth1 delivers"),         # at 8.0
                              ("warning", "heartbeat path eth1 degraded: no advert for 3.500s"
                                          " while eth0 delivers")]               # at 9.0


# ---- syncgroup.py --------------------------------------------------------------------------

B, M, F, I = State.BACKUP, State.MASTER, State.FAULT, State.INIT


def v(out, into):
    return {"out": out, "in": into}


def test_settle_logs_the_transition_and_keeps_history_entries():
    g = SyncGroup("edge", ("out", "in"))
    acts = g.settle(v((B, False), (I, False)))
    assert acts == [Log("info", "sync group edge: INIT -> BACKUP (out BACKUP, in INIT)"),
                    GroupNotify("BACKUP", "INIT")]
    g.settle(v((M, False), (M, False)))
    assert g.history == [("INIT", "BACKUP", "out BACKUP, in INIT"),
                         ("BACKUP", "MASTER", "out MASTER, in MASTER")]
    assert all(type(x) is str for e in g.history for x in e)


def test_settle_history_keeps_the_newest_20_entries():
    g = SyncGroup("edge", ("out", "in"))
    for k in range(25):
        g.settle(v((M, False), (M, False)) if k % 2 else v((B, False), (B, False)))
    assert len(g.history) == 20
    assert g.history[0] == ("BACKUP", "MASTER", "out MASTER, in MASTER")      # the 6th change
    assert g.history[1] == ("MASTER", "BACKUP", "out BACKUP, in BACKUP")
    assert g.history[-1] == ("MASTER", "BACKUP", "out BACKUP, in BACKUP")


def test_a_fault_while_master_gives_yield_and_demote_together():
    g = SyncGroup("edge", ("out", "in"))
    g.update(v((M, False), (M, False)))
    assert g.update(v((F, False), (M, False))) == [
        Yield("in", True, "sync group edge: out in FAULT"),
        Demote("in", "sync group edge: out left MASTER")]


def test_a_cleared_fault_gives_unyield_and_promote_together():
    g = SyncGroup("edge", ("out", "in"))
    g.update(v((F, False), (B, True)))
    assert g.update(v((B, True), (B, True))) == [
        Yield("out", False, "sync group edge: no member in FAULT"),
        Yield("in", False, "sync group edge: no member in FAULT"),
        Promote("out", "sync group edge: every member ready"),
        Promote("in", "sync group edge: every member ready")]


def test_two_members_in_fault_are_named_in_the_reason():
    g = SyncGroup("edge", ("out", "in", "mgmt"))
    assert g.update({"out": (F, False), "in": (F, False), "mgmt": (B, False)}) == [
        Yield("mgmt", True, "sync group edge: in, out in FAULT")]
    g2 = SyncGroup("edge", ("out", "in", "mgmt"))
    g2.update({"out": (M, False), "in": (M, False), "mgmt": (M, False)})
    assert g2.update({"out": (B, False), "in": (B, False), "mgmt": (M, False)}) == [
        Demote("mgmt", "sync group edge: in, out left MASTER")]


def test_a_member_that_settled_as_master_and_leaves_demotes_the_others():
    g = SyncGroup("edge", ("out", "in"))
    g.settle(v((M, False), (M, False)))          # the driver settles after applying events
    assert g.update(v((B, False), (M, False))) == [
        Demote("in", "sync group edge: out left MASTER")]


def test_each_member_action_becomes_its_instances_command_with_the_reason():
    assert command(Promote("in", "r1")) == ("in", GroupCommand("promote", "r1"))
    assert command(Demote("out", "r2")) == ("out", GroupCommand("demote", "r2"))
    assert command(Yield("in", True, "r3")) == ("in", GroupCommand("yield", "r3"))
    assert command(Yield("in", False, "r4")) == ("in", GroupCommand("unyield", "r4"))


def _synced_wanting():
    inst = Instance("in", RouterParams(vrid=52, priority=150, vips=("203.0.113.100",),
                                       local_addr="203.0.113.1", synced=True), 0.0)
    inst.handle(Startup(), 0.0)
    inst.handle_timer(inst.master_down_interval)
    assert inst.wants_master and inst.state is State.BACKUP
    return inst


def test_unyield_keeps_a_ready_backup_ready():
    inst = _synced_wanting()
    before = inst.next_deadline()
    acts = inst.handle(GroupCommand("unyield", "sync group edge: no member in FAULT"), 10.0)
    assert logs(acts) == [("info", "sync group edge: no member in FAULT; not yielding")]
    assert inst.wants_master and inst.next_deadline() == before


def test_yield_to_a_backup_not_waiting_for_the_group_keeps_its_down_timer():
    inst = Instance("in", RouterParams(vrid=52, priority=150, vips=("203.0.113.100",),
                                       local_addr="203.0.113.1", synced=True), 0.0)
    inst.handle(Startup(), 0.0)
    before = inst.next_deadline()
    acts = inst.handle(GroupCommand("yield", "sync group edge: out in FAULT"), 1.0)
    assert logs(acts) == [("info", "sync group edge: out in FAULT; yielding")]
    assert inst.next_deadline() == before and not inst.wants_master


# ---- tracking.py: track files --------------------------------------------------------------

@pytest.mark.parametrize("blank", [" ", "\t", "\n", "\r", "\f", "\v"])
def test_leading_blanks_of_every_kind_are_skipped(blank):
    assert track_file_value(blank + "7") == 7
    assert track_file_value(blank * 3 + "-7") == -7


@pytest.mark.parametrize("text,value", [
    ("-", 0), ("+", 0), ("  ", 0), ("", 0), (None, 0), ("+5", 5), ("-5", -5), ("--5", 0),
    ("+-5", 0), ("-+5", 0), ("x5", 0), ("X5", 0), ("5x", 5),
    # strtol's isspace in the C locale: only the six ASCII blanks, not other Unicode space
    ("\x1c5", 0), ("\xa05", 0), ("\u20035", 0),
    ("0x1f", 31), ("0X1F", 31), ("0xA", 10), ("0XaB", 171), ("0xF", 15), ("0xE", 14), ("0xD", 13),
    ("0xC", 12), ("0xB", 11), ("-0x1F", -31), ("0x", 0), ("0xg", 0), ("0X", 0),
    ("010", 8), ("08", 0), ("0", 0), ("017", 15), ("09", 0), ("7", 7), ("19", 19), ("099", 0),
    ("300", 254), ("-300", -254), ("254", 254), ("255", 254), ("-255", -254), ("253", 253),
    ("1099511627776", 254), ("99999999999999999999999999", 254), ("-1099511627777", -254),
    ("12 34", 12), ("12\n", 12), ("1a", 1), ("0x1g", 1), ("0X1fz", 31),
])
def test_track_file_value_parses_like_strtol_base_0(text, value):
    assert track_file_value(text) == value
    assert type(track_file_value(text)) is int


def test_digits_of_a_huge_number_stop_being_read_far_past_the_clamp():
    # a bound this far above the clamp changes nothing a user sees; pinned here is that
    # every number of up to 13 digits (2**40 is 1099511627776) reads as clamped, sign kept
    for k in range(1, 16):
        assert track_file_value("9" * k) == min(254, int("9" * k))
        assert track_file_value("-" + "9" * k) == max(-254, -int("9" * k))


@pytest.mark.parametrize("value,weight,reverse,effect", [
    (3, 2, False, 6), (3, 2, True, -6), (-3, 2, True, 6), (200, 2, False, 253),
    (-127, 2, False, None), (-126, 2, False, -252), (127, -2, False, None), (127, 2, True, None),
    (0, 0, False, 0), (1, 0, False, None), (0, 0, True, None), (1, 0, True, 0),
])
def test_track_file_effect_is_an_integer_or_fault(value, weight, reverse, effect):
    got = track_file_effect(value, weight, reverse)
    assert got == effect
    assert type(got) is type(effect)
