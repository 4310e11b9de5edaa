"""The nginx pair from etc/ through the real daemon: the VIP follows the host whose nginx answers,
and it moves after exactly `fall` failing check runs (back after exactly `rise` passing ones),
counted from vipd's own record of every run (`vipd events`), not guessed from the time it took.
h1 = lb1 (198.51.100.1, priority 150), h2 = lb2 (198.51.100.2, 100).

Why count runs: a wall-clock bound alone cannot tell `fall` from `2 x fall` every time, since the
check's phase against the fault varies the figure by one interval and load adds lateness on top
(docs/testing.md, "nginx pair bounds under load"). The count does not depend on either.
"""
import json
import random
import time
import tomllib

import pytest

from conftest import (REPO, VIP4, VIPD, example_config, instance_status, wait_holder,
                      wait_state)

pytestmark = pytest.mark.lab

ADVERT = 0.2            # advert_interval for the example configs: faster than their 1 s
# Seconds of slack on the wall-clock upper bounds (the machine is shared: a check program may
# start late). The exact check is the count of runs; this only catches a VIP that never moves
# in reasonable time.
MARGIN = 1.5
EPSILON = 0.01          # event times are time.time() rounded to 1 us in two daemons


def start_example(lab, host, relpath, **values):
    """vipd on host with an example config from etc/, after `vipd check-config` accepted it."""
    text = example_config(lab, host, relpath, **values)
    path = lab.write(f"{host.name}/{relpath.replace('/', '-')}", text)
    r = lab.run(host, [VIPD, "check-config", "-c", path], check=False)
    assert r.returncode == 0 and "OK" in r.stdout, (r.stdout, r.stderr)
    return lab.start_vipd(host, text)


def example_check(relpath) -> dict:
    return tomllib.loads((REPO / "etc" / relpath).read_text())["checks"]["nginx"]


def skew_time(priority, interval=ADVERT):
    return (256 - priority) * interval / 256


def master_down_interval(priority, interval=ADVERT):
    return 3 * interval + skew_time(priority, interval)


def followed(follower) -> list[dict]:
    """The events a `vipd events` follower has written so far (whole lines only)."""
    return [json.loads(line) for line in follower.output().split("\n")[:-1]
            if line.startswith("{")]


def check_runs(events) -> list[dict]:
    return [e for e in events if e["event"] == "check" and e["check"] == "nginx"]


def at_random_phase(lab, follower, interval: float) -> float:
    """Waits for the next check run to end, then a random part of the interval, so the fault
    lands anywhere in the check's cycle (a run in flight, or none); returns that part."""
    seen = len(check_runs(followed(follower)))
    assert lab.wait_for(lambda: len(check_runs(followed(follower))) > seen, timeout=interval + 5,
                        interval=0.01), follower.output()
    phase = random.uniform(0, interval)
    time.sleep(phase)
    return phase


def decisive_run(events, since: float, ok: bool) -> tuple[dict, int, list[bool]]:
    """(run, streak, results): the first check run ending after `since` that changed the verdict,
    and how many runs in a row, it included, had its result. `results` are those of every run
    ending after `since` up to it, for messages."""
    runs = check_runs(events)
    i = next((i for i, e in enumerate(runs) if e["time"] >= since and e["changed"]), None)
    assert i is not None, f"no check run after the fault changed the verdict: {runs}"
    run = runs[i]
    assert run["ok"] is ok, run
    streak = 0
    while streak <= i and runs[i - streak]["ok"] is ok:
        streak += 1
    # the follower must have seen the run before the streak, or the count could be cut short
    assert streak <= i, f"the events stream starts inside the streak: {runs[:i + 1]}"
    return run, streak, [e["ok"] for e in runs[:i + 1] if e["time"] >= since]


def first_transition(events, since: float, to: str | None = None) -> dict:
    found = [e for e in events if e["event"] == "transition" and e["time"] >= since
             and (to is None or e["to"] == to)]
    assert found, f"no transition{' to ' + to if to else ''} in {events}"
    return found[0]


def assert_runs_decided(lab, f1, f2, since: float, ok: bool, needed: int, new_master,
                        not_before: float, at_once: bool) -> None:
    """The VIP moved because of exactly `needed` check runs in a row with result `ok` after the
    fault, and not before them: h1's first transition after the fault comes after the run that
    completed the streak (at once, before any other run, when `at_once`), and the new master
    ("h1" or "h2") became MASTER no sooner than `not_before` seconds after that run."""
    # the VIP may have moved early (that is a failure to report, below): wait for the verdict
    lab.wait_for(lambda: any(e["time"] >= since and e["changed"] for e in check_runs(followed(f1))),
                 timeout=2 * needed + 3, interval=0.05)
    e1 = followed(f1)
    run, streak, results = decisive_run(e1, since, ok)
    what = "passing" if ok else "failing"
    assert streak == needed, (f"the check changed to {what} after {streak} {what} runs in a row,"
                              f" configured {needed}; runs since the fault: {results}")
    moved = first_transition(e1, since)
    assert e1.index(moved) > e1.index(run), f"h1 moved ({moved}) before the deciding run {run}"
    if at_once:
        between = check_runs(e1[e1.index(run) + 1:e1.index(moved)])
        assert not between, f"h1 moved ({moved}) only after more runs: {between}"
    took_over = first_transition(followed(f1 if new_master == "h1" else f2), since, "MASTER")
    assert took_over["time"] >= run["time"] + not_before - EPSILON, (
        f"{new_master} became MASTER {took_over['time'] - run['time']:.3f}s after the deciding run,"
        f" which allows no sooner than {not_before:.3f}s")
    print(f"  {what} runs since the fault: {results}; {new_master} MASTER"
          f" {took_over['time'] - run['time']:.3f}s after the deciding run")


@pytest.mark.parametrize("weight", [0, -60], ids=["fault", "weight-60"])
def test_nginx_pair_vip_follows_nginx(pair, weight):
    lab = pair
    h1, h2 = lab.hosts
    p1 = start_example(lab, h1, "nginx-pair/lb1.toml", advert_interval=ADVERT, weight=weight)
    p2 = start_example(lab, h2, "nginx-pair/lb2.toml", advert_interval=ADVERT)
    f1 = lab.spawn(h1, [VIPD, "events", "--socket", p1.socket], name="events")
    f2 = lab.spawn(h2, [VIPD, "events", "--socket", p2.socket], name="events")
    assert wait_holder(lab, VIP4, ["h1"]), lab.holder(VIP4)
    assert wait_state(lab, p2, "BACKUP")
    assert lab.http_get(lab.client, f"http://{VIP4}/") == "h1\n"
    check = example_check("nginx-pair/lb1.toml")
    interval = check["interval"]
    detect = check["fall"] * interval
    # weight 0: h1 goes FAULT and sends priority 0, h2 waits Skew_Time; weight -60: h1 keeps
    # advertising 90, which h2 ignores, so h2 waits its Master_Down_Interval after the last 150
    # (sent up to one interval before the deciding run, or two when h1's loop ran late).
    handover = skew_time(100) if weight == 0 else master_down_interval(100)
    not_before = handover if weight == 0 else handover - 2 * ADVERT

    phase = at_random_phase(lab, f1, interval)
    since, t0 = time.time(), time.monotonic()
    lab.stop_nginx(h1)
    assert wait_holder(lab, VIP4, ["h2"], timeout=3 * (detect + handover + MARGIN)), \
        lab.holder(VIP4)
    took = time.monotonic() - t0
    print(f"\nnginx stopped on h1 (weight {weight}) {phase:.3f}s after a check run ended: VIP on h2"
          f" after {took:.3f}s; fall x interval {detect:.2f}s +"
          f" {'Skew_Time' if weight == 0 else 'Master_Down_Interval'} {handover:.3f}s ="
          f" {detect + handover:.3f}s")
    assert_runs_decided(lab, f1, f2, since, False, check["fall"], "h2", not_before,
                        at_once=weight == 0)
    assert took < detect + handover + MARGIN
    st = instance_status(lab, p1)
    assert st["checks"]["nginx"]["ok"] is False
    if weight == 0:
        assert wait_state(lab, p1, "FAULT") and "check nginx failing" in \
            instance_status(lab, p1)["faults"]
    else:
        assert wait_state(lab, p1, "BACKUP")
        assert instance_status(lab, p1)["effective_priority"] == 90
    assert lab.wait_for(lambda: lab.http_get(lab.client, f"http://{VIP4}/", timeout=0.5) == "h2\n",
                        timeout=5)

    # FAULT -> BACKUP waits out a Master_Down_Interval; a BACKUP whose priority rises above the
    # master's it knows takes over at once.
    rise = check["rise"] * interval
    wait = master_down_interval(150) if weight == 0 else 0.0
    phase = at_random_phase(lab, f1, interval)
    since, t0 = time.time(), time.monotonic()
    lab.start_nginx(h1)
    assert wait_holder(lab, VIP4, ["h1"], timeout=3 * (rise + wait + MARGIN)), lab.holder(VIP4)
    took = time.monotonic() - t0
    print(f"nginx started on h1 {phase:.3f}s after a check run ended: VIP back on h1 after"
          f" {took:.3f}s; rise x interval {rise:.2f}s + {wait:.3f}s = {rise + wait:.3f}s")
    assert_runs_decided(lab, f1, f2, since, True, check["rise"], "h1", wait, at_once=True)
    assert took < rise + wait + MARGIN
    assert wait_state(lab, p2, "BACKUP")
    st = instance_status(lab, p1)
    assert st["state"] == "MASTER" and st["effective_priority"] == 150
    assert st["checks"]["nginx"]["ok"] is True
    assert lab.wait_for(lambda: lab.http_get(lab.client, f"http://{VIP4}/", timeout=0.5) == "h1\n",
                        timeout=5)
