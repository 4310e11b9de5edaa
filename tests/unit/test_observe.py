"""The observer behind metrics and `vipd events`: tallies, fan-out, slow readers dropped."""
import asyncio
import subprocess
import sys

from vipd.observe import SUBSCRIBER_BACKLOG, Observer, reason_kind


def test_reason_kind_cuts_addresses_and_details():
    assert reason_kind("higher priority master 198.51.100.1 (150 > 100)") == \
        "higher priority master"
    assert reason_kind("fault: link eth0 down") == "fault"
    assert reason_kind("master down timer expired") == "master down timer expired"


def test_tallies_transitions_releases_and_hooks():
    o = Observer()
    o.transition("web", 51, "INIT", "BACKUP", "startup")
    o.transition("web", 51, "BACKUP", "MASTER", "master down timer expired")
    o.transition("web", 51, "MASTER", "BACKUP", "higher priority master 198.51.100.1")
    o.transition("db", 52, "MASTER", "FAULT", "fault: check x failing")
    assert o.released("web") == 1 and o.released("db") == 1 and o.released("none") == 0
    assert o.transitions[("web", "MASTER", "BACKUP", "higher priority master")] == 1
    o.hook("web", "MASTER", 0, "", 0.01)
    o.hook("web", "MASTER", None, "timed out", 1.0)
    assert o.hook_runs[("web", "MASTER")] == 2 and o.hook_failures[("web", "MASTER")] == 1


def test_subscribers_get_every_event_in_order():
    async def go():
        o = Observer()
        q = o.subscribe()
        o.transition("web", 51, "BACKUP", "MASTER", "x")
        o.hook("web", "MASTER", 0, "", 0.5)
        o.check("alive", True, False, 0, "", 0.01)
        got = [q.get_nowait() for _ in range(3)]
        assert [e["event"] for e in got] == ["transition", "hook", "check"]
        assert got[0]["from"] == "BACKUP" and got[0]["to"] == "MASTER"
        o.unsubscribe(q)
        o.transition("web", 51, "MASTER", "BACKUP", "y")
        assert q.empty()
    asyncio.run(go())


def test_a_reader_that_stops_reading_is_dropped_not_waited_for():
    async def go():
        o = Observer()
        slow, fast = o.subscribe(), o.subscribe()
        for i in range(SUBSCRIBER_BACKLOG + 5):
            o.check("alive", True, False, 0, str(i), 0.0)
            while not fast.empty():
                fast.get_nowait()
        # the slow one got an end mark as its last item and no longer receives events
        items = [slow.get_nowait() for _ in range(slow.qsize())]
        assert items[-1] is None and len(items) == SUBSCRIBER_BACKLOG
        o.check("alive", True, False, 0, "late", 0.0)
        assert slow.empty() and fast.get_nowait()["output"] == "late"
    asyncio.run(go())


def test_daemon_does_not_import_prometheus_client_unless_configured():
    code = "import sys, vipd.daemon, vipd.cli; print('prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    code = "import sys, vipd.metrics; print('prometheus_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"     # the check above can see the import


def test_global_metrics_key_is_off_by_default_and_validated():
    import pytest
    from vipd import config
    inst = '[[instance]]\nname="a"\ninterface="eth0"\nvrid=1\nvips=["198.51.100.1/24"]\n'
    assert config.loads(inst).global_.metrics is None
    assert config.loads('[global]\nmetrics = "[::1]:9650"\n' + inst).global_.metrics == "[::1]:9650"
    for bad in ('"localhost:9650"', '"127.0.0.1"', '"127.0.0.1:70000"', "9650"):
        with pytest.raises(config.ConfigError) as e:
            config.loads(f"[global]\nmetrics = {bad}\n" + inst)
        assert [i.key for i in e.value.issues] == ["global.metrics"]


def test_metrics_render_in_pieces_is_the_registrys_text_format():
    """MetricsServer.render gives the loop a turn between pieces; the bytes must be exactly
    what prometheus-client renders for the whole registry at once (HELP/TYPE once a family)."""
    import types

    from prometheus_client import generate_latest

    from vipd import config
    from vipd.metrics import MetricsServer
    from vipd.runtime import Runtime
    text = "".join(f'[[instance]]\nname = "i{i}"\ninterface = "eth0"\nvrid = {i}\n'
                   f'vips = ["198.51.100.{i}/32"]\n' for i in range(1, 121))
    cfg = config.loads(text)
    daemon = types.SimpleNamespace(
        runtimes={c.name: Runtime(c, "198.51.100.254", 0.0) for c in cfg.instances},
        checks={}, observer=Observer(), rx_errors={"unknown_vrid": 3})
    for rt in daemon.runtimes.values():
        rt.core.counters.update(adverts_received=7, discard_ttl=1)
    server = MetricsServer(daemon, "127.0.0.1:9650")
    body = asyncio.run(server.render())
    assert body == generate_latest(server.registry)
    lines = body.decode().splitlines()
    assert lines.count("# TYPE keepalived_vrrp_state gauge") == 1
    assert sum(line.startswith("keepalived_vrrp_state{") for line in lines) == 120
    assert 'vipd_discards_total{iname="i7",intf="eth0",reason="ttl",vrid="7"} 1.0' in lines
