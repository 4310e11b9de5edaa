"""The built-in checks (vipd/probes: http, tcp, redis) against real nginx and redis-server in
lab namespaces: healthy, unhealthy, a server that accepts and never answers (timeout), a refused
connection, the wrong role, a replica not in sync. Each case runs the probe exactly as the check
runner does (run_probe under the check's timeout), in h1's namespace, from the config text a user
would write; then a daemon shows the runner reporting and recovering.

h1 = 198.51.100.1, h2 = 198.51.100.2.
"""
import json
import sys
import time

from conftest import VIP4, status, vipd_config, wait_holder

PY = sys.executable
H1 = "198.51.100.1"
NOBODY = 6390                   # nothing listens here
NOWHERE = "198.51.100.77"       # on the lab segment, no host has it: SYNs go unanswered

PROBE = """
import asyncio, json, sys
from vipd.config import loads
from vipd.probes.run import make_probe, run_probe
cfg = loads("[checks.c]\\n" + sys.argv[1] + '''
[[instance]]
name = "w"
interface = "eth0"
vrid = 1
vips = ["198.51.100.100/24"]
track_checks = ["c"]
''').checks["c"]
async def main():
    probe = make_probe(cfg, lambda: None)
    try:
        return await run_probe(probe, cfg.timeout)
    finally:
        await probe.close()
r = asyncio.run(main())
print(json.dumps({"rc": r.returncode, "output": r.output, "took": r.duration}))
"""


def probe(lab, body: str, host="h1", env=None) -> tuple[int | None, str, float]:
    """(0 healthy / 1 unhealthy / None timed out, the reason, seconds) of one run."""
    r = lab.run(host, [PY, "-c", PROBE, body], timeout=20, env=env)
    out = json.loads(r.stdout)
    return out["rc"], out["output"], out["took"]


def mute_server(lab, port: int, host="h1"):
    """A listening socket that never accepts nor answers: connects succeed, requests hang."""
    proc = lab.spawn(host, [PY, "-c", "import socket, time\n"
                            f"s = socket.create_server(('0.0.0.0', {port}))\n"
                            "print('listening', flush=True)\ntime.sleep(300)"], name=f"mute-{port}")
    assert lab.wait_for(lambda: "listening" in proc.output(), timeout=5)
    return proc


def cli(lab, host, *cmd, port=6379):
    return lab.run(host, ["redis-cli", "-p", str(port), *cmd]).stdout.strip()


# --- http ----------------------------------------------------------------------------------------

def test_http_healthy_wrong_status_body_refused_and_hanging(lab):
    lab.start_nginx("h1", body="all good\n")
    rc, out, _ = probe(lab, 'http = "http://127.0.0.1/"')
    assert (rc, out) == (0, "http://127.0.0.1/ answered 200 OK")
    assert probe(lab, f'http = "http://{H1}/"\nexpect_body = "all good"')[0] == 0
    assert probe(lab, 'http = "http://[::1]/"')[0] == 0
    rc, out, _ = probe(lab, 'http = "http://127.0.0.1/"\nexpect_body = "maintenance"')
    assert rc == 1 and "200 OK without 'maintenance' in the body" in out
    rc, out, _ = probe(lab, 'http = "http://127.0.0.1/missing"')
    assert rc == 1 and "answered 404 Not Found, expected 200" in out
    assert probe(lab, 'http = "http://127.0.0.1/missing"\nexpect_status = 404')[0] == 0
    rc, out, _ = probe(lab, f'http = "http://127.0.0.1:{NOBODY}/"')
    assert (rc, out) == (1, f"http://127.0.0.1:{NOBODY}/: connection refused")
    mute_server(lab, 8081)
    rc, out, took = probe(lab, 'http = "http://127.0.0.1:8081/"\ntimeout = 0.5')
    assert (rc, out) == (None, "http://127.0.0.1:8081/: no answer within 0.5 s")
    assert 0.5 <= took < 0.8
    lab.stop_nginx("h1")
    assert probe(lab, 'http = "http://127.0.0.1/"')[:2] == (1, "http://127.0.0.1/: connection refused")


def test_https_verifies_unless_insecure(lab):
    d = lab.workdir / "h1" / "tls"
    d.mkdir(parents=True)
    lab.run("h1", ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                   "-subj", "/CN=lb1.example", "-keyout", d / "key.pem", "-out", d / "cert.pem"])
    (d / "www").mkdir()
    (d / "www" / "index.html").write_text("tls ok\n")
    conf = lab.write("h1/tls/nginx.conf", f"""user root; worker_processes 1; daemon off;
pid {d}/nginx.pid; error_log stderr notice; events {{ worker_connections 64; }}
http {{ access_log off; client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{ listen 8443 ssl; ssl_certificate {d}/cert.pem; ssl_certificate_key {d}/key.pem;
           root {d}/www; }} }}
""")
    nginx = lab.spawn("h1", ["nginx", "-p", d, "-c", conf, "-e", "stderr"], name="nginx-tls")
    assert lab.wait_for(lambda: "start worker process" in nginx.output(), timeout=10)
    rc, out, _ = probe(lab, 'http = "https://127.0.0.1:8443/"\ninsecure = true\n'
                            'expect_body = "tls ok"')
    assert (rc, out) == (0, "https://127.0.0.1:8443/ answered 200 OK")
    rc, out, _ = probe(lab, 'http = "https://127.0.0.1:8443/"')
    assert rc == 1 and "CERTIFICATE_VERIFY_FAILED" in out


# --- tcp -----------------------------------------------------------------------------------------

def test_tcp_accepted_refused_and_unanswered(lab):
    lab.start_redis("h1")
    rc, out, _ = probe(lab, 'tcp = "127.0.0.1:6379"')
    assert (rc, out) == (0, "127.0.0.1:6379 accepted a connection")
    assert probe(lab, 'tcp = "[2001:db8::1]:6379"')[0] == 0
    assert probe(lab, f'tcp = "127.0.0.1:{NOBODY}"')[:2] == (1, f"127.0.0.1:{NOBODY}: connection refused")
    rc, out, took = probe(lab, f'tcp = "{NOWHERE}:6379"\ntimeout = 0.3')
    assert (rc, out) == (None, f"{NOWHERE}:6379: no answer within 0.3 s") and took < 0.6
    lab.stop_redis("h1")
    assert probe(lab, 'tcp = "127.0.0.1:6379"')[0] == 1


# --- redis ---------------------------------------------------------------------------------------

def test_redis_ping_role_refused_hanging_and_password(lab):
    server = lab.start_redis("h1")
    assert probe(lab, 'redis = "127.0.0.1"')[:2] == (0, "127.0.0.1:6379 answered PONG")
    rc, out, _ = probe(lab, 'redis = "127.0.0.1:6379"\nrole = "master"')
    assert (rc, out) == (0, "127.0.0.1:6379 answered PONG, role master")
    rc, out, _ = probe(lab, 'redis = "127.0.0.1"\nrole = "replica"')
    assert (rc, out) == (1, "127.0.0.1:6379 is a master, expected a replica")
    rc, out, _ = probe(lab, f'redis = "127.0.0.1:{NOBODY}"')
    assert (rc, out) == (1, f"127.0.0.1:{NOBODY}: connection refused")
    server.freeze()                 # accepted by the kernel, never answered
    try:
        rc, out, took = probe(lab, 'redis = "127.0.0.1"\ntimeout = 0.4')
        assert (rc, out) == (None, "127.0.0.1:6379: no answer within 0.4 s") and took < 0.7
    finally:
        server.thaw()
    cli(lab, "h1", "CONFIG", "SET", "requirepass", "s3cret")
    rc, out, _ = probe(lab, 'redis = "127.0.0.1"')
    assert rc == 1 and "Authentication required" in out
    env = {"VIPD_REDIS_PW": "s3cret"}
    assert probe(lab, 'redis = "127.0.0.1"\npassword_env = "VIPD_REDIS_PW"', env=env)[0] == 0
    pw = lab.write("h1/redis.pass", "s3cret\n")
    assert probe(lab, f'redis = "127.0.0.1"\npassword_file = "{pw}"')[0] == 0


def test_redis_replica_synced_only_when_linked_and_caught_up(lab):
    lab.start_redis("h1", extra=["--repl-diskless-sync-delay", "0"])
    lab.start_redis("h2")
    synced = 'redis = "127.0.0.1"\nrole = "replica"\nsynced = true'
    rc, out, _ = probe(lab, synced, host="h2")
    assert (rc, out) == (1, "127.0.0.1:6379 is a master, expected a replica")
    cli(lab, "h2", "REPLICAOF", H1, str(NOBODY))        # its primary is not there
    rc, out, _ = probe(lab, synced, host="h2")
    assert rc == 1 and f"replica of {H1}:{NOBODY}: link to the primary is down" in out
    # a replica passes role = "replica" without synced: the link is not asked about
    assert probe(lab, 'redis = "127.0.0.1"\nrole = "replica"', host="h2")[0] == 0
    cli(lab, "h1", "SET", "k", "v")
    cli(lab, "h2", "REPLICAOF", H1, "6379")
    assert lab.wait_for(lambda: cli(lab, "h2", "GET", "k") == "v", timeout=10)
    rc, out, _ = probe(lab, synced, host="h2")
    assert rc == 0 and f"replica of {H1}:6379, in sync: 0 bytes behind" in out
    # a primary with a frozen process: the replica's link is still "up", but the primary cannot
    # be asked for its offset within the timeout, so the replica does not count as in sync
    primary = lab.start_redis("h1", port=6380)
    cli(lab, "h2", "REPLICAOF", H1, "6380")
    assert lab.wait_for(lambda: probe(lab, synced, host="h2")[0] == 0, timeout=10)
    primary.freeze()
    try:
        rc, out, _ = probe(lab, synced + "\ntimeout = 0.5", host="h2")
        assert rc is None and "no answer within 0.5 s" in out
    finally:
        primary.thaw()
    # its primary gone: the link goes down and the replica is out of sync again
    lab.stop_redis("h1")
    rc, out, _ = probe(lab, synced, host="h2")
    assert rc == 1 and "link to the primary is down" in out


# --- the runner, in a daemon ---------------------------------------------------------------------

def check_status(lab, proc, name="c"):
    return status(lab, proc)["instances"][0]["checks"][name]


def test_daemon_runs_builtin_checks_and_recovers_a_reused_connection(lab):
    server = lab.start_redis("h1")
    lab.start_nginx("h1")
    checks = ('[checks.c]\nredis = "127.0.0.1"\nrole = "master"\ninterval = 0.1\ntimeout = 0.3\n'
              'rise = 1\nfall = 1\n'
              '[checks.web]\nhttp = "http://127.0.0.1/"\ninterval = 0.1\nrise = 1\nfall = 1\n')
    vipd = lab.start_vipd("h1", checks + vipd_config(track_checks=["c", "web"]))
    assert lab.wait_for(lambda: check_status(lab, vipd).get("ok") is True, timeout=10)
    web = check_status(lab, vipd, "web")
    assert web["kind"] == "http" and web["output"] == "http://127.0.0.1/ answered 200 OK"
    assert wait_holder(lab, VIP4, ["h1"])
    server.freeze()
    assert lab.wait_for(lambda: check_status(lab, vipd)["timeouts"] > 0, timeout=10)
    assert lab.wait_for(lambda: status(lab, vipd)["instances"][0]["state"] == "FAULT", timeout=5)
    server.thaw()
    assert lab.wait_for(lambda: check_status(lab, vipd)["ok"] is True, timeout=10)
    lab.stop_redis("h1")
    assert lab.wait_for(lambda: "connection refused" in check_status(lab, vipd)["output"], 10)
    lab.start_redis("h1")           # a new server: the probe connects afresh
    assert lab.wait_for(lambda: check_status(lab, vipd)["ok"] is True, timeout=10)
    assert wait_holder(lab, VIP4, ["h1"])
    s = check_status(lab, vipd)
    assert s["kind"] == "redis" and s["output"] == "127.0.0.1:6379 answered PONG, role master"
