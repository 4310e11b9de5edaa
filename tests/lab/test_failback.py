"""Failback policies (auto, none, semi-auto), cold start, drain and undrain, with real kernels and
nginx on both hosts. A client GETs http://VIP/ every 5 ms throughout: each move of the VIP may
cost it a bounded outage, and the longest one is printed next to the bound."""
import datetime
import time

import pytest

from conftest import (
    VIP4, HttpProber, instance_status, logged_transitions, transition_log_problems, vipd_cli,
    vipd_config, wait_holder, wait_state,
)

pytestmark = pytest.mark.lab

INTERVAL = 0.1
P1, P2 = 150, 100
MDI = 3 * INTERVAL + (256 - P2) / 256 * INTERVAL   # the longer of the two: 0.361 s
PREEMPT_DELAY = 2.0
CUT_OUTAGE = MDI + 1.5         # a dead master: Master_Down_Interval, then ARP catches up
MOVE_OUTAGE = 1.0              # a planned move (failback, drain, undrain): both hosts alive


def config(priority: int, failback: str, **kw) -> str:
    return vipd_config(priority=priority, interval=INTERVAL, failback=failback, **kw)


def start_pair(lab, failback: str, **kw):
    p1 = lab.start_vipd("h1", config(P1, failback, router_id="h1", **kw))
    p2 = lab.start_vipd("h2", config(P2, failback, router_id="h2", **kw))
    assert wait_holder(lab, VIP4, ["h1"]), lab.holder(VIP4)
    assert wait_state(lab, p2, "BACKUP")
    return p1, p2


def first_transition(lab, proc) -> dict | None:
    """proc's first transition (INIT -> BACKUP at start) from its status; None before that."""
    try:
        return instance_status(lab, proc)["transitions"][0]
    except Exception:     # not listening yet, or no transition yet
        return None


def started_at(proc, name: str = "web") -> float | None:
    """Wall time of proc's first transition (INIT -> ...) from its log; None before it."""
    for line in proc.output().splitlines():
        if f"[{name}] INIT -> " in line:
            return datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def holders_for(lab, seconds: float) -> set:
    """Every distinct holder list of the VIP seen while sampling for a while."""
    seen = set()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        seen.add(tuple(lab.holder(VIP4)))
        time.sleep(0.05)
    return seen


def table_row(lab, proc, name: str = "web") -> str:
    out = vipd_cli(lab, proc, "status").stdout
    return next(line for line in out.splitlines() if line.split()[:1] == [name])


def vip_moves_to(lab, probe: HttpProber, host: str, since: float, what: str,
                 bound: float = MOVE_OUTAGE, planned: bool = True, timeout: float = 5.0) -> float:
    """Waits until host alone holds the VIP and the client is answered by it; returns how long
    after since the VIP got there. The client's longest outage since then is printed and bounded;
    a planned move (both hosts alive) must also lose no SYN and no request: a packet sent to a
    host that no longer holds the VIP is dropped, and TCP retries a SYN only after 1 s. A request
    that was acknowledged but not answered in time (nginx or the client waited for a CPU on the
    loaded machine) is only a slow answer, bounded by the outage."""
    assert wait_holder(lab, VIP4, [host], timeout=timeout), lab.holder(VIP4)
    took = time.monotonic() - since
    assert probe.wait_answer(host)
    until = time.monotonic()
    outage, fails = probe.outage(since, until), probe.failures(since, until)
    print(f"\n{what}: VIP on {host} after {took:.3f}s; client outage {outage:.3f}s"
          f" (bound {bound}s), {len(fails)} failed requests {sorted({f[2] for f in fails})}")
    assert outage < bound, (what, fails)
    if planned:
        assert not [f for f in fails if f[2] in ("ERR:TimeoutError@connect",
                                                 "ERR:TimeoutError@unacked")], (what, fails)
    return took


def assert_logged_once(lab, *procs) -> None:
    for p in procs:
        assert transition_log_problems(lab, p) == [], (p.host.name, logged_transitions(p))


def failed_over_and_healed(lab, failback: str, **kw):
    """A pair under the policy with the client polling; h1's link is cut, h2 takes over and the
    client follows; h1's link comes back. Returns (p1, p2, probe, time of the heal) once h1 is
    BACKUP again."""
    p1, p2 = start_pair(lab, failback, **kw)
    probe = HttpProber(lab)
    t_cut = time.monotonic()
    lab.cut("h1")
    vip_moves_to(lab, probe, "h2", t_cut, "master link cut", CUT_OUTAGE, planned=False)
    assert wait_state(lab, p1, "FAULT")
    t_heal = time.monotonic()
    lab.heal("h1")
    assert wait_state(lab, p1, "BACKUP", timeout=5)
    return p1, p2, probe, t_heal


def test_auto_fails_back_after_preempt_delay(pair):
    lab = pair
    p1, p2, probe, t_heal = failed_over_and_healed(lab, "auto", preempt_delay=PREEMPT_DELAY)
    took = vip_moves_to(lab, probe, "h1", t_heal,
                        f"auto failback after heal (preempt_delay {PREEMPT_DELAY}s)",
                        timeout=PREEMPT_DELAY + 5)
    assert PREEMPT_DELAY <= took < PREEMPT_DELAY + 1.5
    assert wait_state(lab, p2, "BACKUP")
    assert_logged_once(lab, p1, p2)


def test_none_stays_until_the_new_master_fails(pair):
    lab = pair
    p1, p2, probe, _ = failed_over_and_healed(lab, "none")
    assert holders_for(lab, 4 * MDI) == {("h2",)}
    st = instance_status(lab, p1)
    assert (st["state"], st["failback_pending"], st["master_ip"]) == ("BACKUP", False,
                                                                      lab.host("h2").ip4)
    assert "PENDING" not in table_row(lab, p1)
    assert probe.last_answer() == "h2"
    # The role comes back only when the master it now follows fails.
    t_cut = time.monotonic()
    lab.cut("h2")
    vip_moves_to(lab, probe, "h1", t_cut, "none: h2 cut", CUT_OUTAGE, planned=False)
    assert_logged_once(lab, p1, p2)


def test_semi_auto_waits_for_operator_then_moves_in_one_step(pair):
    lab = pair
    p1, p2, probe, _ = failed_over_and_healed(lab, "semi-auto")
    assert lab.wait_for(lambda: instance_status(lab, p1)["failback_pending"], timeout=5)
    assert holders_for(lab, 4 * MDI) == {("h2",)}
    assert instance_status(lab, p1)["failback_pending"] is True
    assert "semi-auto PENDING" in table_row(lab, p1)
    assert p1.output().count("failback pending") == 1
    before = len(instance_status(lab, p1)["transitions"])

    t0 = time.monotonic()
    r = vipd_cli(lab, p1, "failback", "web")
    t_cli = time.monotonic() - t0
    took = vip_moves_to(lab, probe, "h1", t0, f"`vipd failback` (command took {t_cli:.3f}s)")
    assert took < t_cli + 1.0, r.stdout
    st = instance_status(lab, p1)
    assert [(t["from"], t["to"]) for t in st["transitions"][before:]] == [("BACKUP", "MASTER")]
    assert st["failback_pending"] is False
    assert "PENDING" not in table_row(lab, p1)
    assert wait_state(lab, p2, "BACKUP")
    assert_logged_once(lab, p1, p2)


@pytest.mark.parametrize("failback", ["none", "semi-auto", "auto"])
def test_cold_start_when_lower_priority_started_alone_first(pair, failback):
    """h2 (lower) runs alone and becomes master; h1 starts later. With none and semi-auto h1
    leaves it there (semi-auto: pending); with auto it takes over after its preempt_delay. The
    transition that moves the role back says why."""
    lab = pair
    kw = {"preempt_delay": 1.0} if failback == "auto" else {}
    p2 = lab.start_vipd("h2", config(P2, failback, router_id="h2", **kw))
    assert wait_holder(lab, VIP4, ["h2"])
    t_start = time.monotonic()
    p1 = lab.start_vipd("h1", config(P1, failback, router_id="h1", **kw))
    # h1 starts as BACKUP (with auto it may be MASTER by the first look: read its history)
    assert lab.wait_for(lambda: first_transition(lab, p1), timeout=10, interval=0.05)
    assert first_transition(lab, p1)["to"] == "BACKUP"
    if failback == "auto":
        assert wait_holder(lab, VIP4, ["h1"], timeout=5 + time.monotonic() - t_start)
        # timed on h1's own clock from its start (INIT -> BACKUP), not from when the test
        # launched it: a loaded machine may take seconds to start a process
        hist = instance_status(lab, p1)["transitions"]
        took = next(x["time"] for x in hist if x["to"] == "MASTER") - hist[0]["time"]
        print(f"\ncold start, auto: h1 master {took:.3f}s after it started"
              f" (preempt_delay 1.0s)")
        assert 1.0 <= took < 2.0
        reason_words = "preempt"
    else:
        assert holders_for(lab, 4 * MDI) == {("h2",)}
        assert instance_status(lab, p1)["failback_pending"] is (failback == "semi-auto")
        if failback == "none":
            assert_logged_once(lab, p1, p2)
            return
        vipd_cli(lab, p1, "failback", "web")
        assert wait_holder(lab, VIP4, ["h1"], timeout=5)
        reason_words = "failback"
    assert_logged_once(lab, p1, p2)
    old, new, reason = logged_transitions(p1)[-1]
    # "master down timer expired" would be false: h2 is alive and advertising.
    assert (old, new) == ("BACKUP", "MASTER") and reason_words in reason, reason


@pytest.mark.parametrize("failback", ["none", "semi-auto"])
def test_cold_start_together_elects_higher_priority_whatever_the_policy(pair, failback):
    """Both start together, the lower-priority one first: neither has heard a master, so the one
    whose Master_Down_Interval ends first (the higher priority: shorter Skew_Time) wins. That holds
    while the higher one starts less than the difference of the Skew_Times after the other.
    Which process gets going first is up to the scheduler: a start where h1 came first, or too
    late, proves nothing and is made again (both stopped well before either could be master)."""
    lab = pair
    high, interval = 200, 1.0
    window = (high - P2) / 256 * interval
    # logs and status times are to the millisecond, from two clocks read a moment apart: a gap
    # under `tick` cannot show an order, so such a start is made again like one out of window
    tick = 0.01
    # aim h1's start at the middle of the window, steered by the gap each attempt measured:
    # two processes launched back to back start in either order (gaps of -44 to +1 ms seen)
    lead = window / 2
    for attempt in range(1, 9):
        p2 = lab.start_vipd("h2", vipd_config(priority=P2, interval=interval, failback=failback),
                            wait=False)
        time.sleep(lead)
        p1 = lab.start_vipd("h1", vipd_config(priority=high, interval=interval,
                                              failback=failback), wait=False)
        # from the logs, not `vipd status`: on a loaded machine a status call can take longer
        # than Master_Down_Interval, and this decision must come before either is master
        assert lab.wait_for(lambda: started_at(p1) and started_at(p2), timeout=10, interval=0.02)
        gap = started_at(p1) - started_at(p2)
        print(f"\ncold start together ({failback}), attempt {attempt}: h1 started {gap:+.3f}s"
              f" after h2; it wins if in (0, {window:.3f}s) = ({high}-{P2})/256 * {interval}s")
        if tick < gap < window - tick:
            break
        lead = max(0.0, lead + window / 2 - gap)
        p1.stop()
        p2.stop()
        assert wait_holder(lab, VIP4, [], timeout=5)     # a clean stop removes the VIP
    else:
        pytest.fail("in 8 starts h2 never started first and within the window")
    assert wait_holder(lab, VIP4, ["h1"], timeout=3 * interval + 5), lab.holder(VIP4)
    assert wait_state(lab, p2, "BACKUP")
    s1, s2 = instance_status(lab, p1), instance_status(lab, p2)
    assert 0 < s1["transitions"][0]["time"] - s2["transitions"][0]["time"] < window
    assert holders_for(lab, 2 * interval) == {("h1",)}
    assert s2["failback_pending"] is False and s1["failback_pending"] is False
    assert_logged_once(lab, p1, p2)


def test_drain_moves_vip_and_drained_host_ignores_the_others_failure(pair):
    lab = pair
    p1, p2 = start_pair(lab, "auto")
    probe = HttpProber(lab)

    t0 = time.monotonic()
    vipd_cli(lab, p1, "drain", "web")
    vip_moves_to(lab, probe, "h2", t0, "`vipd drain` on the master")
    st = instance_status(lab, p1)
    assert (st["state"], st["drained"]) == ("BACKUP", True)
    assert "BACKUP (drained)" in table_row(lab, p1)
    assert wait_state(lab, p2, "MASTER")

    lab.cut("h2")
    assert wait_state(lab, p2, "FAULT", timeout=5)
    assert wait_holder(lab, VIP4, [], timeout=5), lab.holder(VIP4)   # h2's removal done
    assert holders_for(lab, 4 * MDI) == {()}         # nobody: h1 is drained
    during_cut = instance_status(lab, p1)
    assert (during_cut["state"], during_cut["drained"]) == ("BACKUP", True)
    row_during_cut = table_row(lab, p1)
    assert "BACKUP (drained)" in row_during_cut
    lab.heal("h2")
    assert wait_holder(lab, VIP4, ["h2"], timeout=5), lab.holder(VIP4)
    assert probe.wait_answer("h2")

    t0 = time.monotonic()
    vipd_cli(lab, p1, "undrain", "web")
    vip_moves_to(lab, probe, "h1", t0, f"`vipd undrain` (auto; Master_Down_Interval {MDI:.3f}s)")
    assert wait_state(lab, p2, "BACKUP")
    st = instance_status(lab, p1)
    assert (st["state"], st["drained"]) == ("MASTER", False)
    assert "drained" not in table_row(lab, p1)
    assert_logged_once(lab, p1, p2)
    # While h2 was cut nobody was master: h1's status must not name the dead h2 as its master.
    assert during_cut["master_ip"] is None, row_during_cut
