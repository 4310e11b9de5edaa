"""Built-in checks in the config ([checks.NAME] with http, tcp, redis or sentinels): every rule
gives file, key path and reason; a good table gives the dataclass the runner builds a probe from.
And redis-py is loaded only when a redis or sentinel check is configured."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from vipd.confchecks import CheckConfig, HttpCheck, RedisCheck, SentinelCheck, TcpCheck
from vipd.config import ConfigError, loads
from vipd.scriptsec import password_issues

PATH = "/etc/vipd/test.toml"
REPO = pathlib.Path(__file__).resolve().parents[2]
INSTANCE = ('[[instance]]\nname = "web"\ninterface = "eth0"\nvrid = 51\n'
            'vips = ["198.51.100.100/24"]\ntrack_checks = ["c"]\n')


def check(body: str) -> CheckConfig:
    return loads(f"[checks.c]\n{body}\n{INSTANCE}", PATH).checks["c"]


def issues(body: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as err:
        check(body)
    assert all(i.file == PATH for i in err.value.issues)
    return [(i.key, i.reason) for i in err.value.issues]


def test_each_kind_and_its_defaults():
    c = check('http = "http://127.0.0.1/health"\ninterval = 0.5')
    assert (c.kind, c.command, c.interval) == ("http", (), 0.5)
    assert c.builtin == HttpCheck("http://127.0.0.1/health", 200, None, False)
    c = check('http = "https://[::1]:8443/"\nexpect_status = 204\nexpect_body = "ok"\n'
              'insecure = true')
    assert c.builtin == HttpCheck("https://[::1]:8443/", 204, "ok", True)
    assert check('tcp = "127.0.0.1:6379"').builtin == TcpCheck("127.0.0.1:6379")
    assert check('tcp = "[2001:db8::1]:80"').builtin == TcpCheck("[2001:db8::1]:80")
    c = check('redis = "127.0.0.1"\nrole = "replica"\nsynced = true\nmax_lag = 1.0\n'
              'password_env = "REDISCLI_AUTH"')
    assert (c.kind, c.builtin) == ("redis", RedisCheck("127.0.0.1:6379", "replica", True, 1.0,
                                                      "REDISCLI_AUTH", None))
    assert check('redis = "::1"').builtin.redis == "[::1]:6379"     # a bare IPv6 address
    c = check('sentinels = ["198.51.100.11", "198.51.100.12:26380"]\nmaster_name = "mymaster"')
    assert (c.kind, c.builtin) == ("sentinels", SentinelCheck(
        ("198.51.100.11:26379", "198.51.100.12:26380"), "mymaster"))
    assert check('command = ["/bin/true"]').kind == "command"


RULES = [
    ("interval = 1", "checks.c", "needs exactly one of command, http, tcp, redis, sentinels"),
    ('http = "http://x/"\ntcp = "x:1"', "checks.c.tcp", "already has http = ..."),
    ('command = ["/bin/true"]\nredis = "x"', "checks.c.redis", "already has command = ..."),
    ('http = "ftp://x/"', "checks.c.http", 'must be an http:// or https:// URL'),
    ('http = "http://x/"\nexpect_status = 999', "checks.c.expect_status", "100..599, got 999"),
    ('http = "http://x/"\nexpect_body = ""', "checks.c.expect_body", "non-empty string"),
    ('http = "http://x/"\ninsecure = 1', "checks.c.insecure", "true or false, got 1"),
    ('tcp = "127.0.0.1"', "checks.c.tcp", 'must be "HOST:PORT", got "127.0.0.1"'),
    ('tcp = "127.0.0.1:0"', "checks.c.tcp", "HOST:PORT"),
    ('tcp = "127.0.0.1:65536"', "checks.c.tcp", "HOST:PORT"),
    ('tcp = "x:80"\nexpect_status = 200', "checks.c.expect_status",
     "only valid in a check with http = ..."),
    ('command = ["/bin/true"]\nrole = "master"', "checks.c.role",
     "only valid in a check with redis = ..."),
    ('http = "http://x/"\npassword_env = "P"', "checks.c.password_env",
     "only valid in a check with redis = ... or sentinels = ..."),
    ('redis = "x"\nrole = "slave"', "checks.c.role", '"any", "master" or "replica", got "slave"'),
    ('redis = "x"\nsynced = "yes"', "checks.c.synced", "true or false"),
    ('redis = "x"\nmax_lag = 0', "checks.c.max_lag", "> 0, got 0"),
    ('redis = "x"\npassword = "hunter2"', "checks.c.password",
     "never goes in the config text: use password_env"),
    ('redis = "x"\npassword_env = "1X"', "checks.c.password_env", "environment variable"),
    ('redis = "x"\npassword_file = "pass"', "checks.c.password_file", "absolute path"),
    ('redis = "x"\npassword_env = "P"\npassword_file = "/p"', "checks.c.password_file",
     "not both"),
    ('sentinels = []\nmaster_name = "m"', "checks.c.sentinels", "non-empty array"),
    ('sentinels = ["a", "a:26379"]\nmaster_name = "m"', "checks.c.sentinels[1]",
     "listed twice"),
    ('sentinels = ["a"]', "checks.c.master_name", "required key is missing"),
    ('sentinels = ["a"]\nmaster_name = "m"\nrole = "master"', "checks.c.role",
     "only valid in a check with redis = ..."),
    ('tcp = "x:1"\nmaxlag = 1', "checks.c.maxlag", "unknown key"),
]


@pytest.mark.parametrize("body, key, reason", RULES, ids=[r[0] for r in RULES])
def test_rule(body, key, reason):
    [(got_key, got_reason)] = issues(body)
    assert got_key == key and reason in got_reason, (got_key, got_reason)


def test_password_sources_must_exist_and_a_file_must_be_root_only(tmp_path, monkeypatch):
    monkeypatch.delenv("VIPD_TEST_PW", raising=False)
    spec = check('redis = "x"\npassword_env = "VIPD_TEST_PW"').builtin
    assert password_issues(spec, as_root=False) == [
        ("password_env", "environment variable VIPD_TEST_PW is not set")]
    monkeypatch.setenv("VIPD_TEST_PW", "s3cret")
    assert password_issues(spec, as_root=False) == []
    pw = tmp_path / "redis.pass"
    pw.write_text("s3cret\n")
    spec = check(f'redis = "x"\npassword_file = "{pw}"').builtin
    pw.chmod(0o640)
    [(key, reason)] = password_issues(spec, as_root=False)
    assert key == "password_file" and "readable by no one else" in reason and "mode 640" in reason
    pw.chmod(0o600)
    assert password_issues(spec, as_root=False) == []
    if os.geteuid() == 0:       # owned by another user: refused when vipd runs as root
        os.chown(pw, 65534, 65534)
        assert "owned by root" in password_issues(spec, as_root=True)[0][1]
    pw.unlink()
    assert "No such file" in password_issues(spec, as_root=False)[0][1]


IMPORTS = """
import asyncio, sys
import vipd.cli, vipd.daemon      # all that `vipd run` imports, then the runners it would start
from vipd.config import loads
from vipd.checks import CheckRunner
cfg = loads(sys.argv[1])
async def main():
    runners = [CheckRunner(c, lambda r: None) for c in cfg.checks.values()]
    for r in runners:
        await r.stop()
asyncio.run(main())
print(sorted(m for m in sys.modules if m == "redis" or m.startswith("redis.")))
"""


@pytest.mark.parametrize("body, loaded", [
    ('http = "http://127.0.0.1/"', False),
    ('command = ["/bin/true"]', False),
    ('redis = "127.0.0.1"', True),          # shows that the probe below can see redis loaded
    ('sentinels = ["127.0.0.1"]\nmaster_name = "m"', True),
])
def test_redis_is_imported_only_for_redis_and_sentinel_checks(body, loaded):
    out = subprocess.run([sys.executable, "-c", IMPORTS, f"[checks.c]\n{body}\n{INSTANCE}"],
                         capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert ("'redis'" in out) is loaded, out


def test_a_redis_check_without_redis_py_is_a_config_error(tmp_path, monkeypatch):
    import importlib.util
    from vipd import scriptsec
    conf = tmp_path / "vipd.toml"
    conf.write_text(f'[checks.c]\nredis = "127.0.0.1"\n{INSTANCE}')
    assert scriptsec.load_checked(str(conf)).checks["c"].kind == "redis"   # redis-py is here
    real = importlib.util.find_spec
    monkeypatch.setattr(scriptsec.importlib.util, "find_spec",
                        lambda name, *a: None if name == "redis" else real(name, *a))
    with pytest.raises(ConfigError) as err:
        scriptsec.load_checked(str(conf))
    [issue] = err.value.issues
    assert (issue.key, issue.reason) == ("checks.c.redis", "needs redis-py, which is not "
                                         "installed: pip install 'vipd[redis]'")
