"""scripts/install and scripts/uninstall (issue 12): into a temporary root, and once for real.

Root is needed (the scripts refuse otherwise), not namespaces. The real install takes a lock so
two suites on one machine do not install over each other, and refuses to run over an existing
installation rather than remove it afterwards.
"""
import fcntl
import os
import pathlib
import subprocess
import tomllib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.lab
VERSION = subprocess.run([str(REPO / ".venv/bin/vipd"), "--version"], capture_output=True,
                         text=True).stdout.strip()
REAL_PATHS = ["/opt/vipd", "/usr/bin/vipd", "/usr/lib/vipd", "/etc/vipd",
              "/etc/systemd/system/vipd.service", "/usr/share/doc/vipd"]


def sh(*argv, check=True):
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=check,
                          timeout=300)


def programs(conf: pathlib.Path) -> set[str]:
    """Every program a config runs (check commands and notify hooks)."""
    doc = tomllib.loads(conf.read_text())
    progs = {c["command"][0] for c in doc.get("checks", {}).values() if "command" in c}
    for inst in doc["instance"]:
        progs |= {argv[0] for k, argv in inst.get("notify", {}).items() if k != "timeout"}
    return progs


def tree(root: pathlib.Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def check_root_install(root: pathlib.Path, mine: pathlib.Path, r) -> None:
    assert r.returncode == 0, r.stderr
    assert f"{mine} exists: kept" in r.stderr
    assert mine.read_text() == "# mine\n"
    vipd = root / "usr/bin/vipd"
    assert os.readlink(vipd) == str(root / "opt/vipd/bin/vipd")
    assert sh(vipd, "--version").stdout.strip() == VERSION
    examples = sorted((root / "usr/share/doc/vipd/examples").glob("*/*.toml"))
    assert {e.parent.name for e in examples} >= {"nginx-pair", "redis-pair", "unicast-pair"}
    for conf in examples:
        out = sh(vipd, "check-config", "--no-host-checks", "-c", conf, check=False)
        assert out.returncode == 0, out.stderr
        for prog in programs(conf):       # the examples name the installed programs
            assert os.access(root / prog.lstrip("/"), os.X_OK), (conf, prog)
    for check in (root / "usr/lib/vipd/checks").iterdir():     # they find vipd's probe code
        out = sh(check, "--help", check=False)
        assert out.returncode == 0, (check, out.stderr)
    unit = (root / "etc/systemd/system/vipd.service").read_text()
    assert "ExecStart=/usr/bin/vipd run" in unit and "/usr/local/bin" not in unit
    # the check that an uninstall leaves nothing can fail: the root is not empty now
    assert len(tree(root)) > 20
    r = sh(REPO / "scripts/uninstall", "--root", root)
    assert tree(root) == ["etc", "etc/vipd", "etc/vipd/vipd.toml"], r.stderr
    assert mine.read_text() == "# mine\n"


def check_real_install(r) -> None:
    assert r.returncode == 0, r.stderr
    assert "example config written to /etc/vipd/vipd.toml" in r.stderr
    assert sh("/usr/bin/vipd", "--version").stdout.strip() == VERSION
    # for real, check-config also checks the programs: installed, root-owned, safe
    for conf in [pathlib.Path("/etc/vipd/vipd.toml"),
                 *sorted(pathlib.Path("/usr/share/doc/vipd/examples").glob("*/*.toml"))]:
        out = sh("/usr/bin/vipd", "check-config", "-c", conf, check=False)
        assert out.returncode == 0, out.stderr
    for check in pathlib.Path("/usr/lib/vipd/checks").iterdir():
        out = sh(check, "--help", check=False)
        assert out.returncode == 0, (check, out.stderr)
    out = sh("/opt/vipd/bin/python", "-c", "import redis, prometheus_client, psutil, click")
    assert all(os.path.lexists(p) for p in REAL_PATHS)


def test_install_into_a_root_and_for_real_then_uninstall(tmp_path):
    """Both installs run at once (each spends most of its time waiting on pip)."""
    root = tmp_path / "root"
    # an operator's config is there already: the install must not touch it
    (root / "etc/vipd").mkdir(parents=True)
    mine = root / "etc/vipd/vipd.toml"
    mine.write_text("# mine\n")
    with open("/run/lock/vipd-install-test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        there = [p for p in REAL_PATHS if os.path.lexists(p)]
        assert not there, f"vipd is already installed on this machine ({there}): not touching it"
        runs = [subprocess.Popen([str(REPO / "scripts/install"), *args], text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for args in (["--root", str(root)], [])]
        try:
            outs = [p.communicate(timeout=300) for p in runs]
            done = [subprocess.CompletedProcess(p.args, p.returncode, *o)
                    for p, o in zip(runs, outs)]
            check_real_install(done[1])
        finally:
            r = sh(REPO / "scripts/uninstall", check=False)
        assert r.returncode == 0, r.stderr
        assert [p for p in REAL_PATHS if os.path.lexists(p)] == []
    check_root_install(root, mine, done[0])
