"""The health-check programs (checks/) and the Redis notify hook (etc/hooks/redis-role) against
real nginx and redis-server in lab namespaces: h1 = 198.51.100.1, h2 = 198.51.100.2.

Every check run asserts the contract vipd relies on: exactly one line of output, exit 0 only
when healthy.
"""
import os
import pathlib
import shutil
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
CHECKS = REPO / "checks"
HOOK = REPO / "etc" / "hooks" / "redis-role"
H1, H2 = "198.51.100.1", "198.51.100.2"
NOBODY = "6390"                  # a port where nothing listens
PY = sys.executable              # has psutil; "-S" below runs without any site-packages
# How much longer than its --timeout a check may take beyond its start-up (startup_time, measured
# at the same load). Still catches a check that overruns its timeout by half of 1 s or more, or
# hangs.
OVERRUN = 0.5


def run_check(lab, name, *args, host="h1", python=(PY,), env=None):
    """(exit status, the one line printed, seconds taken)."""
    start = time.monotonic()
    r = lab.run(host, [*python, CHECKS / name, *args], check=False, timeout=15,
                env={**os.environ, **(env or {})})
    took = time.monotonic() - start
    assert len(r.stdout.splitlines()) == 1, f"expected one line: {r.stdout!r} {r.stderr!r}"
    return r.returncode, r.stdout.strip(), took


def startup_time(lab, name, *args, host="h1", runs=2) -> float:
    """The longest of a few runs of check `name` pointed (by args) at a port nobody listens on:
    refused at once, so this is what starting it costs now (ip netns exec, Python, imports).
    Taken before and after a timed run, so a load that rose meanwhile counts too."""
    times = []
    for _ in range(runs):
        rc, line, took = run_check(lab, name, *args, host=host)
        assert rc == 1 and "refused" in line, line
        times.append(took)
    return max(times)


def cli(lab, host, *cmd, port=6379):
    return lab.run(host, ["redis-cli", "-p", port, *cmd]).stdout.strip()


def info(lab, host, port=6379) -> dict:
    text = cli(lab, host, "INFO", port=port)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def hook(lab, host, state, master_ip="", **env):
    r = lab.run(host, [HOOK], check=False, timeout=15, env={
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "VIPD_INSTANCE": "db", "VIPD_VRID": "52",
        "VIPD_STATE": state, "VIPD_PREV_STATE": "BACKUP", "VIPD_PRIORITY": "100",
        "VIPD_INTERFACE": "eth0", "VIPD_VIPS": "198.51.100.100/24", "VIPD_MASTER_IP": master_ip,
        **env})
    assert len(r.stdout.splitlines()) == 1, f"expected one line: {r.stdout!r} {r.stderr!r}"
    return r.returncode, r.stdout.strip()


def replica_pair(lab):
    """h1 primary, h2 its replica, linked and in sync."""
    lab.start_redis("h1", extra=["--repl-diskless-sync-delay", "0"])
    lab.start_redis("h2")
    cli(lab, "h1", "SET", "greeting", "hello")
    cli(lab, "h2", "REPLICAOF", H1, "6379")
    assert lab.wait_for(lambda: cli(lab, "h2", "GET", "greeting") == "hello", timeout=10)


# --- checks/nginx -----------------------------------------------------------------------------

def test_nginx_check_healthy_then_refused_when_nginx_stops(lab):
    lab.start_nginx("h1")
    rc, line, _ = run_check(lab, "nginx")
    assert rc == 0 and line.startswith("nginx OK") and "200" in line
    # Through its shebang (whatever python3 is on PATH) and with no site-packages at all.
    for python in ((), (PY, "-S")):
        assert run_check(lab, "nginx", python=python)[0] == 0
    lab.stop_nginx("h1")
    rc, line, _ = run_check(lab, "nginx")
    assert rc == 1 and "connection refused" in line


def test_nginx_check_wrong_status(lab):
    lab.start_nginx("h1")
    rc, line, _ = run_check(lab, "nginx", "--url", "http://127.0.0.1/missing")
    assert rc == 1 and "404" in line and "expected 200" in line
    assert run_check(lab, "nginx", "--url", "http://127.0.0.1/missing", "--expect-status", "404")[0] == 0


def test_nginx_check_gives_up_on_a_server_that_never_answers(lab):
    mute = lab.spawn("h1", [PY, "-c", "import socket, time\n"
                            "s = socket.create_server(('127.0.0.1', 8081))\n"
                            "print('listening', flush=True)\ntime.sleep(60)"])
    assert lab.wait_for(lambda: "listening" in mute.output(), timeout=5)
    refused = ("nginx", "--url", f"http://127.0.0.1:{NOBODY}/")
    startup = startup_time(lab, *refused)
    rc, line, took = run_check(lab, "nginx", "--url", "http://127.0.0.1:8081/", "--timeout", "1")
    startup = max(startup, startup_time(lab, *refused, runs=1))
    print(f"\nno answer: the check took {took:.2f}s with --timeout 1, start-up {startup:.2f}s")
    assert rc == 1 and "no answer within 1 s" in line
    assert took < 1 + startup + OVERRUN


def test_nginx_check_process_option_requires_a_master_process(lab):
    lab.start_nginx("h1")
    rc, line, _ = run_check(lab, "nginx", "--process")
    assert rc == 0 and "master process" in line
    # In a PID namespace of its own the check sees no nginx, though HTTP still answers.
    alone = ("unshare", "--pid", "--fork", "--mount-proc", PY)
    assert run_check(lab, "nginx", python=alone)[0] == 0
    rc, line, _ = run_check(lab, "nginx", "--process", python=alone)
    assert rc == 1 and "no nginx master process" in line
    rc, line, _ = run_check(lab, "nginx", "--process", python=(PY, "-S"))
    assert rc == 2 and "psutil" in line


# --- checks/redis -----------------------------------------------------------------------------

def test_redis_check_ping_role_and_refused(lab):
    lab.start_redis("h1")
    rc, line, _ = run_check(lab, "redis")
    assert rc == 0 and "PONG" in line
    for python in ((), (PY, "-S")):
        assert run_check(lab, "redis", "--role", "master", python=python)[0] == 0
    rc, line, _ = run_check(lab, "redis", "--role", "replica")
    assert rc == 1 and "is a master, expected a replica" in line
    rc, line, _ = run_check(lab, "redis", "--port", NOBODY)
    assert rc == 1 and "connection refused" in line


def test_redis_check_and_hook_with_a_password(lab):
    lab.start_redis("h1", extra=["--requirepass", "s3cret", "--replicaof", H2, NOBODY])
    rc, line, _ = run_check(lab, "redis")
    assert rc == 1 and "NOAUTH" in line
    rc, line, _ = run_check(lab, "redis", "--password", "wrong")
    assert rc == 1 and "AUTH failed" in line
    assert run_check(lab, "redis", "--role", "replica", env={"REDIS_PASSWORD": "s3cret"})[0] == 0
    rc, line = hook(lab, "h1", "MASTER")
    assert rc == 1 and "NOAUTH" in line
    rc, line = hook(lab, "h1", "MASTER", REDIS_PASSWORD="s3cret")
    assert rc == 0 and "promoted" in line
    assert run_check(lab, "redis", "--role", "master", "--password", "s3cret")[0] == 0


def test_redis_check_synced_only_when_linked_and_caught_up(lab):
    primary = lab.start_redis("h1", extra=["--repl-diskless-sync-delay", "0"])
    lab.start_redis("h2")
    synced = ("--synced", "--role", "replica")
    rc, line, _ = run_check(lab, "redis", *synced, host="h2")
    assert rc == 1 and "is a master" in line

    cli(lab, "h2", "REPLICAOF", H1, NOBODY)            # a replica whose primary is not there
    rc, line, _ = run_check(lab, "redis", *synced, host="h2")
    assert rc == 1 and "link to the primary is" in line

    cli(lab, "h2", "REPLICAOF", H1, "6379")
    assert lab.wait_for(lambda: run_check(lab, "redis", *synced, host="h2")[0] == 0, timeout=10)
    assert "0 bytes behind" in run_check(lab, "redis", *synced, host="h2")[1]

    # The replica reads the stream but applies no write while paused: it falls behind.
    cli(lab, "h2", "CLIENT", "PAUSE", "20000", "WRITE")
    cli(lab, "h1", "EVAL", "for i = 1, 20000 do redis.call('set', 'k' .. i, string.rep('x', 100)) end", "0")
    rc, line, _ = run_check(lab, "redis", *synced, host="h2")
    assert rc == 1 and "bytes behind the primary (max 1048576)" in line
    assert run_check(lab, "redis", *synced, "--max-lag-bytes", "100000000", host="h2")[0] == 0
    cli(lab, "h2", "CLIENT", "UNPAUSE")
    assert lab.wait_for(lambda: run_check(lab, "redis", *synced, host="h2")[0] == 0, timeout=10)

    # A frozen primary: silent for longer than allowed, and it cannot be asked for its offset.
    primary.freeze()
    assert lab.wait_for(lambda: "nothing heard from the primary" in
                        run_check(lab, "redis", *synced, "--max-lag-seconds", "1", host="h2")[1],
                        timeout=5)
    refused = ("redis", *synced, "--port", NOBODY)
    startup = startup_time(lab, *refused, host="h2")
    rc, line, took = run_check(lab, "redis", *synced, host="h2")
    startup = max(startup, startup_time(lab, *refused, host="h2", runs=1))
    print(f"\nfrozen primary: the check took {took:.2f}s with --timeout 1, start-up {startup:.2f}s")
    assert rc == 1 and f"no answer within 1 s while reading the primary's offset from {H1}:6379" in line
    assert took < 1 + startup + OVERRUN
    primary.thaw()


def test_loading_redis_fails_the_check_and_is_never_promoted(lab):
    first = lab.start_redis("h1", port=6380)
    cli(lab, "h1", "EVAL", "for i = 1, 20000 do redis.call('set', 'k' .. i, 'v') end", "0", port=6380)
    cli(lab, "h1", "SAVE", port=6380)
    first.stop()
    # Loading 20000 keys at 1 ms each takes about 20 s, answering INFO meanwhile: far longer than
    # the observations below need even on a loaded machine (teardown ends it early).
    lab.start_redis("h1", port=6380, extra=["--replicaof", H2, NOBODY, "--key-load-delay", "1000",
                                            "--loading-process-events-interval-bytes", "1024"])
    assert lab.wait_for(lambda: info(lab, "h1", 6380).get("loading") == "1", timeout=5)

    check = run_check(lab, "redis", "--port", "6380")
    hooks = [hook(lab, "h1", state, master_ip=H2, REDIS_PORT="6380", REDIS_MASTER_PORT="6379")
             for state in ("MASTER", "BACKUP")]
    after = info(lab, "h1", 6380)
    # Loading from before the first observation to after the last: they all saw a loading Redis.
    assert after["loading"] == "1", (
        f"Redis finished loading before the observations ended; they prove nothing: {check} {hooks}")
    rc, line, _ = check
    assert rc == 1 and "still loading" in line
    for rc, line in hooks:
        assert rc == 3 and "still loading" in line
    assert (after["role"], after["master_host"], after["master_port"]) == ("slave", H2, NOBODY)


# --- checks/process ---------------------------------------------------------------------------

def test_process_check_by_name_and_pidfile(lab, tmp_path):
    name = f"vchk{lab.prefix[-5:]}"                   # unique on this machine, under 15 chars
    exe = tmp_path / name
    exe.symlink_to(shutil.which("sleep"))             # the kernel names the process after it
    proc = lab.spawn("h1", [exe, "60"])
    assert lab.wait_for(lambda: run_check(lab, "process", "--name", name)[0] == 0, timeout=5)
    assert f"pid {proc.pid}" in run_check(lab, "process", "--name", name)[1]

    pidfile = lab.write("h1/sleep.pid", f"{proc.pid}\n")
    rc, line, _ = run_check(lab, "process", "--pidfile", pidfile, "--name", name)
    assert rc == 0 and f"pid {proc.pid} ({name})" in line
    rc, line, _ = run_check(lab, "process", "--pidfile", pidfile, "--name", "nginx")
    assert rc == 1 and "not 'nginx'" in line

    proc.stop()
    rc, line, _ = run_check(lab, "process", "--name", name)
    assert rc == 1 and f"no process named {name!r} is running" in line
    rc, line, _ = run_check(lab, "process", "--pidfile", pidfile)
    assert rc == 1 and "is not running" in line
    rc, line, _ = run_check(lab, "process", "--pidfile", tmp_path / "none.pid")
    assert rc == 1 and "does not exist" in line
    rc, line, _ = run_check(lab, "process", "--name", name, python=(PY, "-S"))
    assert rc == 2 and "psutil" in line


def test_process_check_does_not_count_a_zombie(lab, tmp_path):
    name = f"vchz{lab.prefix[-5:]}"
    exe = tmp_path / name
    exe.symlink_to(shutil.which("true"))
    # The parent never reaps its exited child, which stays a zombie named `name`.
    parent = lab.spawn("h1", [PY, "-c", "import os, sys, time\n"
                              "pid = os.fork()\n"
                              "if pid == 0:\n    os.execv(sys.argv[1], [sys.argv[1]])\n"
                              "print(pid, flush=True)\ntime.sleep(60)", exe])
    assert lab.wait_for(lambda: parent.output().strip().isdigit(), timeout=5)
    zombie = parent.output().strip()
    assert lab.wait_for(lambda: "State:\tZ" in pathlib.Path(f"/proc/{zombie}/status").read_text(),
                        timeout=5)
    rc, line, _ = run_check(lab, "process", "--name", name)
    assert rc == 1 and f"only zombies: {zombie}" in line
    rc, line, _ = run_check(lab, "process", "--pidfile", lab.write("h1/z.pid", zombie))
    assert rc == 1 and "zombie" in line


# --- etc/hooks/redis-role ---------------------------------------------------------------------

def test_hook_master_promotes_the_replica_once(lab):
    replica_pair(lab)
    rc, line = hook(lab, "h2", "MASTER")
    assert rc == 0 and f"promoted to primary (was a replica of {H1}:6379)" in line
    assert info(lab, "h2")["role"] == "master"
    assert cli(lab, "h2", "SET", "written", "on-h2") == "OK"          # accepts writes now
    assert cli(lab, "h2", "GET", "greeting") == "hello"               # kept the replicated data
    rc, line = hook(lab, "h2", "MASTER")
    assert rc == 0 and "already a primary" in line


def test_hook_backup_follows_the_master_once(lab):
    lab.start_redis("h1", extra=["--repl-diskless-sync-delay", "0"])
    lab.start_redis("h2")
    cli(lab, "h1", "SET", "greeting", "hello")
    rc, line = hook(lab, "h2", "BACKUP", master_ip=H1)
    assert rc == 0 and f"now replicates from {H1}:6379 (was a master)" in line
    fields = info(lab, "h2")
    assert (fields["role"], fields["master_host"], fields["master_port"]) == ("slave", H1, "6379")
    assert lab.wait_for(lambda: cli(lab, "h2", "GET", "greeting") == "hello", timeout=10)
    rc, line = hook(lab, "h2", "BACKUP", master_ip=H1)
    assert rc == 0 and f"already replicates from {H1}:6379" in line
    assert info(lab, "h2")["master_link_status"] == "up"


def test_hook_fault_and_stop_leave_roles_alone(lab):
    replica_pair(lab)
    for host, other in (("h1", H2), ("h2", H1)):
        for state in ("FAULT", "STOP"):
            rc, line = hook(lab, host, state, master_ip=other)
            assert rc == 0 and "left as it is" in line
    assert info(lab, "h1")["role"] == "master"
    assert info(lab, "h2")["role"] == "slave" and info(lab, "h2")["master_host"] == H1
    assert hook(lab, "c", "FAULT")[0] == 0            # no Redis to reach: still nothing to do


def test_hook_backup_without_master_address_does_nothing(lab):
    lab.start_redis("h1")
    rc, line = hook(lab, "h1", "BACKUP", master_ip="")
    assert rc == 0 and "master address unknown" in line
    assert info(lab, "h1")["role"] == "master"


def test_hook_reports_unreachable_redis_and_usage_errors(lab):
    rc, line = hook(lab, "h1", "MASTER")
    assert rc == 1 and "Connection refused" in line
    assert hook(lab, "h1", "")[0] == 2
    assert hook(lab, "h1", "MASTER", REDIS_CLI="/nonexistent/redis-cli")[0] == 2
