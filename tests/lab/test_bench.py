"""netns-lab/bench.py on a tiny scenario: every figure is measured for both daemons and reported.

The targets themselves are not asserted (the lab shares 2 CPUs with other tests); only that each
figure exists, is physically possible for what it measures, and reaches the table and the JSON.
"""
import contextlib
import io
import json

import pytest

import bench
import benchtable

pytestmark = [pytest.mark.lab, pytest.mark.timeout(240)]

INTERVAL = 0.1
MDI = 3 * INTERVAL + (256 - 100) * INTERVAL / 256      # h2 (priority 100) waiting for h1
SKEW = MDI - 3 * INTERVAL


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    table = io.StringIO()
    with contextlib.redirect_stdout(table):
        rc = bench.main(["--trials", "2", "--intervals", str(INTERVAL), "--scale-instances", "4",
                         "--scale-seconds", "2", "--json", str(out)])
    print(table.getvalue())
    return rc, table.getvalue(), json.loads(out.read_text())


def test_every_scenario_has_every_figure_for_both_daemons(report):
    rc, text, data = report
    assert rc == 0
    rows = data["rows"]
    assert {r["scenario"].split()[0] for r in rows} == set(bench.SCENARIOS)
    missing = [(r["scenario"], r["figure"]) for r in rows
               if r["vipd"] is None or r["keepalived"] is None]
    assert missing == []
    assert [r for r in rows if r["target"] and r["verdict"] not in ("PASS", "MISS")] == []
    for scen in ("host-failure", "clean-stop", "service-failure"):
        for daemon in bench.DAEMONS:
            trials = data["results"][scen][f"{INTERVAL:g}s"][daemon]
            assert len(trials) == 2 and [t["error"] for t in trials] == [None, None], trials


def test_table_shows_each_row_with_values_theory_ratio_and_verdict(report):
    rc, text, data = report
    lines = text.splitlines()
    assert "vipd/ka" in text and "keepalived" in lines[2]
    for r in data["rows"]:
        line = next((ln for ln in lines if ln.startswith(r["scenario"]) and r["figure"] in ln),
                    None)
        assert line is not None, r
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}"
        assert benchtable.fmt_value(r["vipd"], r["unit"]) in line and ratio in line.split()
        if r["verdict"]:
            assert line.endswith(r["verdict"])
    assert data["machine"]["nproc"] >= 1 and "Keepalived v2.2" in data["machine"]["keepalived"]


def test_figures_are_what_the_wire_allows(report):
    """The capture and the prober are read right: nothing happens faster than the protocol lets
    it, and nothing is unboundedly late."""
    _, _, data = report
    res = data["results"]
    for daemon in bench.DAEMONS:
        hf = res["host-failure"]["0.1s"][daemon]
        # the backup cannot give up on the master before 3 intervals of silence
        assert all(3 * INTERVAL < t["detection"] < MDI + 0.5 for t in hf), hf
        assert all(t["outage"] > 3 * INTERVAL - INTERVAL for t in hf), hf
        # prober and capture share the clock: clients are served once h2 takes over, not before
        assert all(t["detection"] - 0.01 < t["outage_adv"] < t["detection"] + 0.5 for t in hf)
        cs = res["clean-stop"]["0.1s"][daemon]
        assert all(0 < t["takeover"] < MDI for t in cs), cs
        sf = res["service-failure"]["0.1s"][daemon]
        # a failing check needs fall - 1 more runs after the first failing one, 1 s apart
        assert all((benchtable.CHECK_FALL - 1) * benchtable.CHECK_INTERVAL < t["answered"] < 4 for t in sf)
        sc = res["scale"]["4x0.1s"][daemon]
        assert sc["spurious"] == 0 and sc["silent_instances"] == 0 and sc["vips_as_elected"]
        assert abs(sc["gap"]["p50"] - INTERVAL) < 0.02 and sc["gap"]["n"] >= 4 * 10
        assert all(10 < mb < 500 for mb in sc["rss_mb"].values()), sc
