"""Sentinel mode (etc/redis-sentinel) on three lab hosts, each with redis-server, Debian's
redis-sentinel (quorum 2, down-after-milliseconds 2000, the example's) and vipd with the example config: the
VIP follows the primary Sentinel elects, and vipd changes no Redis role itself.

One scenario, in the order an operator meets it (each phase needs the state the last one left):
  1. the primary's Redis is killed: Sentinel fails over, and the VIP is on the new primary soon
     after +switch-master (measured from the sentinels' and vipd's logs and printed; bounded at
     1 s, with no check poll in this phase); writes through the VIP resume and none is answered
     READONLY;
  2. the old primary's Redis comes back (empty): Sentinel makes it a replica; the VIP stays;
  3. the primary's host is cut off from the other two hosts (the client still reaches it): it
     drops the VIP (it reaches 1 of 3 sentinels), the majority elects a new primary that gets the
     VIP, and no write that a replica acknowledged on the isolated primary is lost
     (min-replicas-to-write; acknowledged = WAIT 1 answered >= 1, tests/lab/redis_writer.py).
"""
import datetime
import re
import signal
import time

from conftest import REPO, VIP4, example_config, status, wait_holder
from redispair import Writer, rinfo

ETC = REPO / "etc" / "redis-sentinel"
ADDR = {"h1": "198.51.100.1", "h2": "198.51.100.2", "h3": "198.51.100.3"}
HOST_OF = {ip: h for h, ip in ADDR.items()}
SWITCH = re.compile(r"(\d+ \w+ \d+ [\d:.]+) # \+switch-master mymaster (\S+) \d+ (\S+) \d+")
MASTER = re.compile(r"^(\S+ \S+) vipd INFO \[redis\] \w+ -> MASTER")


# phase 1's check interval: no poll within the phase (the check's first run is at start)
POLL_OFF = 300.0


def fault_naming(st: dict, primary_ip: str) -> bool:
    """The (only) instance is FAULT because its check names primary_ip, not this host, as primary."""
    s = st["instances"][0]
    return s["state"] == "FAULT" and f"{primary_ip}:6379" in s["checks"]["sentinel"]["output"]


def redis_args() -> list[str]:
    """etc/redis-sentinel/redis.conf as redis-server arguments (bind/protected-mode: the lab's)."""
    args = []
    for line in (ETC / "redis.conf").read_text().splitlines():
        if line.strip() and not line.startswith("#") and line.split()[0] not in ("bind", "protected-mode"):
            key, *values = line.split()
            args += [f"--{key}", *values]
    return args


def start_redis(lab, h):
    extra = redis_args() + ([] if h == "h1" else ["--replicaof", ADDR["h1"], "6379"])
    return lab.start_redis(h, extra=extra)


def start_sentinel(lab, h):
    d = lab.workdir / h / "sentinel"
    d.mkdir(parents=True, exist_ok=True)
    # as in the example: 2 s (500 ms and 1 s made Sentinel fail over spuriously, more than once,
    # on this loaded 2-core machine, where a process can wait that long for a CPU)
    text = (ETC / "sentinel.conf").read_text()
    conf = lab.write(f"{h}/sentinel/sentinel.conf", text + f'dir {d}\nlogfile ""\n')
    proc = lab.spawn(h, ["redis-sentinel", conf], name="sentinel")
    assert lab.wait_for(lambda: "+monitor master mymaster" in proc.output(), timeout=10), \
        proc.output()
    return proc


def sentinel_view(lab, h) -> dict:
    reply = lab.run(h, ["redis-cli", "-p", "26379", "SENTINEL", "MASTER", "mymaster"]).stdout
    words = reply.split()
    return dict(zip(words[::2], words[1::2]))


def log_time(text: str) -> float:
    """Wall-clock seconds of a Redis ("30 Nov 2026 18:14:06.868") or vipd ("2026-11-30
    18:14:07,752") log time stamp; both logs are written on this machine, in its time zone."""
    for fmt in ("%d %b %Y %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S,%f"):
        try:
            return datetime.datetime.strptime(text, fmt).timestamp()
        except ValueError:
            pass
    raise ValueError(text)


def switches(sentinels, new_ip) -> list[float]:
    """Times of the +switch-master to new_ip in the sentinels' logs."""
    return sorted(log_time(m[1]) for p in sentinels.values()
                  for m in SWITCH.finditer(p.output()) if m[3] == new_ip)


def became_master(vipd) -> list[float]:
    return [log_time(m[1]) for line in vipd.output().splitlines() if (m := MASTER.match(line))]


def current_primary(lab) -> str:
    """The host whose Redis the majority of the sentinels names as the primary now."""
    views = [sentinel_view(lab, h)["ip"] for h in ("h1", "h2", "h3")]
    return HOST_OF[max(set(views), key=views.count)]


def replica_of(lab, h, primary: str) -> bool:
    """h's Redis is linked to primary (False also while it cannot be asked: Sentinel's role change
    closes client connections)."""
    r = lab.run(h, ["redis-cli", "-p", "6379", "INFO", "replication"], check=False)
    info = dict(line.split(":", 1) for line in r.stdout.splitlines() if ":" in line)
    return info.get("master_host") == ADDR[primary] and info.get("master_link_status") == "up"


def holders_while(lab, predicate, timeout) -> set[str]:
    """Every VIP holder seen (sampled) until predicate() is true; asserts it becomes true."""
    seen, end = set(), time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        seen.update(lab.holder(VIP4) or ["none"])
        time.sleep(0.05)
    return seen


def test_the_example_runs_no_hooks():
    """In Sentinel mode vipd changes no Redis role: the example has no notify hook at all."""
    from vipd.config import NotifyConfig, load
    cfg = load(str(ETC / "vipd.toml"))
    assert [inst.notify for inst in cfg.instances] == [NotifyConfig()]
    assert cfg.checks["sentinel"].kind == "sentinels"


def test_vip_follows_the_primary_sentinel_elects(lab_factory):
    lab = lab_factory(hosts=3)
    redis = {h: start_redis(lab, h) for h in ("h1", "h2", "h3")}
    assert lab.wait_for(lambda: all(rinfo(lab, h).get("master_link_status") == "up"
                                    for h in ("h2", "h3")), timeout=10)
    sentinels = {h: start_sentinel(lab, h) for h in ("h1", "h2", "h3")}
    # a failover needs each sentinel to know the other two (hello messages via the primary)
    assert lab.wait_for(lambda: all(sentinel_view(lab, h).get("num-other-sentinels") == "2"
                                    for h in sentinels), timeout=20)
    # Phase 1 runs with a check interval far beyond its length (one run at start, the next one
    # POLL_OFF later): only Sentinel's +switch-master can move the VIP there, however long a
    # loaded machine delays a process. The example's 0.5 s poll is restored (SIGHUP) before
    # phase 3, which needs it (a cut-off host hears no +switch-master).
    vipd = {}
    for h in ("h1", "h2", "h3"):
        text = example_config(lab, lab.host(h), "redis-sentinel/vipd.toml", interval=POLL_OFF)
        vipd[h] = lab.start_vipd(h, text)
    assert wait_holder(lab, VIP4, ["h1"], timeout=15)
    for h in ("h2", "h3"):
        assert lab.wait_for(lambda: fault_naming(status(lab, vipd[h]), ADDR["h1"]), timeout=5), \
            status(lab, vipd[h])

    # The writer's READONLY count can see READONLY: a replica answers writes with it.
    probe = Writer(lab, target=ADDR["h3"])
    assert lab.wait_for(lambda: probe.errors().get("READONLY", 0) > 0, timeout=20)
    probe.proc.stop()

    # 1. The primary's Redis dies: Sentinel elects a replica, the VIP follows it.
    writer = Writer(lab)
    assert lab.wait_for(lambda: len(writer.acked()) > 20, timeout=10)
    killed = time.monotonic()
    redis["h1"].kill()
    assert lab.wait_for(lambda: current_primary(lab) != "h1", timeout=15)
    new = current_primary(lab)
    assert wait_holder(lab, VIP4, [new], timeout=5)
    switch = switches(sentinels, ADDR[new])[0]
    took = became_master(vipd[new])[-1] - switch
    print(f"\nVIP on the new primary {new} {took * 1000:.0f} ms after the first +switch-master")
    # measured 41-214 ms; the goal (200 ms) is a benchmark figure. 1 s is generous for a loaded
    # machine, and with no poll in this phase a daemon that ignored +switch-master would not
    # have moved the VIP at all (wait_holder above fails first).
    assert 0 <= took < 1.0
    # woken by the subscription (logged when heard), not by a poll
    heard = [log_time(m[1]) for m in re.finditer(
        rf"^(\S+ \S+) vipd INFO sentinel \S+: \+switch-master mymaster \S+ \d+ {ADDR[new]} ",
        vipd[new].output(), re.M)]
    assert heard and 0 <= became_master(vipd[new])[-1] - heard[0] < 1.0, heard
    assert lab.wait_for(lambda: writer.written(since=killed + 0.1)[-20:] and
                        len(writer.written(since=killed)) > 20, timeout=10)
    assert "READONLY" not in writer.errors(), writer.errors()

    # The example's poll back (SIGHUP) for phase 3, which relies on it. The changed check
    # restarts the instance, with no verdict until the check's first run: the replicas' hosts
    # first, each until it is FAULT again (meanwhile the primary's adverts keep it BACKUP), then
    # the primary's, which takes the VIP back a Master_Down_Interval later.
    for h in sorted(vipd, key=lambda h: h == new):
        n = vipd[h].output().count("reloaded")
        vipd[h].config_path.write_text(
            example_config(lab, lab.host(h), "redis-sentinel/vipd.toml"))
        vipd[h].send_signal(signal.SIGHUP)
        assert lab.wait_for(lambda: vipd[h].output().count("reloaded") == n + 1, timeout=5)
        if h != new:
            assert lab.wait_for(lambda: fault_naming(status(lab, vipd[h]), ADDR[new]),
                                timeout=5), status(lab, vipd[h])
    assert wait_holder(lab, VIP4, [new], timeout=5)

    # 2. The old primary's Redis returns, empty: Sentinel makes it a replica; the VIP stays put.
    redis["h1"] = start_redis(lab, "h1")
    seen = holders_while(lab, lambda: replica_of(lab, "h1", new), timeout=20)
    assert seen == {new}, seen
    assert lab.holder(VIP4) == [new]

    # 3. The primary's host is cut off from the other two; the client still reaches it.
    isolated = new
    others = [h for h in ("h1", "h2", "h3") if h != isolated]
    cut = time.monotonic()
    for h in others:
        lab.isolate(isolated, h)
    assert lab.wait_for(lambda: lab.holder(VIP4) != [isolated], timeout=5)
    lost_vip = time.monotonic() - cut
    s = status(lab, vipd[isolated])["instances"][0]
    assert s["state"] == "FAULT" and "reached 1 of 3 sentinels" in s["checks"]["sentinel"]["output"]
    assert lab.wait_for(lambda: lab.holder(VIP4) in ([others[0]], [others[1]]), timeout=20)
    majority_primary = lab.holder(VIP4)[0]
    assert lab.wait_for(lambda: all(sentinel_view(lab, h)["ip"] == ADDR[majority_primary]
                                    for h in others), timeout=10)
    assert lab.wait_for(lambda: len(writer.acked(since=time.monotonic() - 0.5)) > 5, timeout=10)
    print(f"isolated primary {isolated} dropped the VIP {lost_vip * 1000:.0f} ms after the cut; "
          f"new primary {majority_primary}")
    for h in others:
        lab.unisolate(isolated, h)
    # it rejoins as a replica of the majority's primary; the VIP stays
    seen = holders_while(lab, lambda: replica_of(lab, isolated, majority_primary), timeout=30)
    assert seen == {majority_primary}, seen
    writer.proc.stop()
    acked = writer.acked()
    assert acked and writer.missing(acked) == []
    assert "READONLY" not in writer.errors(), writer.errors()
    ok_not_acked = sorted(set(writer.written(since=cut)) - set(acked))
    print(f"writes acknowledged by a replica: {len(acked)}, none lost; answered OK by the "
          f"isolated primary but not acknowledged: {len(ok_not_acked)}, of them lost: "
          f"{len(writer.missing(ok_not_acked)) if ok_not_acked else 0}; errors {writer.errors()}")
