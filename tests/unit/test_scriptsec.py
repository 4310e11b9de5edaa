"""Programs named by a config: missing, not executable, or writable by non-root -> config error."""
import os

import pytest

from vipd.config import loads
from vipd.scriptsec import program_issues

CONF = """
[global]
{glob}
[checks.web]
command = ["{check}", "--url", "http://127.0.0.1/"]

[[instance]]
name = "web"
interface = "eth0"
vrid = 51
vips = ["198.51.100.100/24"]
track_checks = ["web"]
[instance.notify]
master = ["{hook}"]
"""


@pytest.fixture
def progs(tmp_path):
    d = tmp_path / "bin"
    d.mkdir(mode=0o755)
    os.chmod(tmp_path, 0o755)
    for name in ("check", "hook"):
        p = d / name
        p.write_text("#!/bin/sh\nexit 0\n")
        p.chmod(0o755)
    return d


def issues(progs, glob="", **paths):
    text = CONF.format(glob=glob, check=paths.get("check", progs / "check"),
                       hook=paths.get("hook", progs / "hook"))
    return [str(i) for i in program_issues(loads(text, "/etc/vipd/vipd.toml"), as_root=True)]


def test_good_programs_pass(progs):
    assert issues(progs) == []


def test_missing_and_not_executable(progs):
    (progs / "hook").chmod(0o644)
    got = issues(progs, check=progs / "nope")
    assert any("checks.web.command[0]" in g and "does not exist" in g for g in got)
    assert any("instance[0].notify.master[0]" in g and "not executable" in g for g in got)
    assert all(g.startswith("/etc/vipd/vipd.toml: ") for g in got)


def test_world_writable_program_refused(progs):
    (progs / "check").chmod(0o777)
    got = issues(progs)
    assert len(got) == 1 and "writable by everyone" in got[0] and "as root" in got[0]


def test_writable_directory_above_program_refused(progs):
    progs.chmod(0o777)
    got = issues(progs)
    assert len(got) == 2 and all("directory above program" in g for g in got)


def test_program_owned_by_another_user_refused(progs):
    os.chown(progs / "hook", 65534, 65534)
    got = issues(progs)
    assert len(got) == 1 and "(owner)" in got[0] and "notify.master" in got[0]


def test_unknown_script_user(progs):
    got = issues(progs, glob='script_user = "no-such-user-vipd"')
    assert any("global.script_user" in g and "no such user" in g for g in got)
