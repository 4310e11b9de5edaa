"""Client-side tools for the Redis lab tests, run in a lab namespace with the venv's Python.

    redis_writer.py write HOST PORT    SET w:N = N for N = 1, 2, ... then WAIT 1 (100 ms), forever;
                                       one line per write: "TIME N SET WAIT SERVER" (see below)
    redis_writer.py check HOST PORT    reads numbers N on stdin; prints JSON {"checked", "missing"}:
                                       the N whose key w:N is absent or holds another value
    redis_writer.py watch PORT         polls the local Redis every 20 ms; prints a line
                                       "WALLTIME role master_host link sync loading" on each change

write: TIME is time.monotonic() when the SET's answer (or error) came back: the clock is shared by
every namespace, so the test compares it with its own. SET is "ok" or the error's kind (KINDS):
READONLY, NOREPLICAS, LOADING, ... or ConnectionError, TimeoutError. WAIT is how many replicas
acknowledged the write, "-" when it was not asked (the SET failed), or an error kind. A write
is "acked" when WAIT >= 1: the replica had it. SERVER is the first 12 characters of the run_id of
the Redis that answered (asked once per connection: behind a VIP a new connection may reach
another server), "-" when none answered. After any connection error the next command opens a new
connection; nothing is retried, so each line is one attempt and an error is never hidden.
"""
import json
import sys
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

WAIT_MS = 100
PACE = 0.005            # between writes: keeps the writer light on a shared 2-core machine
WATCHED = ("role", "master_host", "master_link_status", "master_sync_in_progress", "loading")


def client(host: str, port: int) -> redis.Redis:
    return redis.Redis(host, port, socket_timeout=0.5, socket_connect_timeout=0.5,
                       retry=Retry(NoBackoff(), 0), decode_responses=True)


# An error's kind by its exception class. redis-py strips the code from the errors it has a class
# for (a ReadOnlyError's message starts "You can't write..."), so the message cannot tell them
# apart. A plain ResponseError is a code redis-py has no class for (NOREPLICAS, MISCONF, ERR): it
# keeps the code as the message's first word. Order matters: BusyLoadingError is a ConnectionError.
KINDS = ((redis.exceptions.ReadOnlyError, "READONLY"),
         (redis.exceptions.BusyLoadingError, "LOADING"),
         (redis.exceptions.OutOfMemoryError, "OOM"),
         (redis.exceptions.MasterDownError, "MASTERDOWN"),
         (redis.exceptions.AuthenticationError, "AUTH"),
         (redis.exceptions.TimeoutError, "TimeoutError"),
         (redis.exceptions.ConnectionError, "ConnectionError"))


def kind(e: Exception) -> str:
    for cls, name in KINDS:
        if isinstance(e, cls):
            return name
    if type(e) is redis.ResponseError:
        return (str(e).split() or ["ERR"])[0]
    return type(e).__name__


def write(host: str, port: int) -> None:
    r, n, server = client(host, port), 0, None
    while True:
        n += 1
        try:
            # A new connection may reach another server behind the same address: ask which.
            server = server or r.info("server")["run_id"][:12]
            r.set(f"w:{n}", str(n))
            result = "ok"
        except redis.RedisError as e:
            result = kind(e)
            if isinstance(e, (redis.ConnectionError, redis.TimeoutError)):
                server = None
        t, acks = time.monotonic(), "-"
        if result == "ok":
            try:
                acks = str(r.execute_command("WAIT", 1, WAIT_MS))
            except redis.RedisError as e:
                acks = kind(e)
        print(f"{t:.4f} {n} {result} {acks} {server or '-'}", flush=True)
        time.sleep(PACE)


def check(host: str, port: int) -> None:
    want = [int(x) for x in sys.stdin.read().split()]
    r, missing = client(host, port), []
    for i in range(0, len(want), 1000):
        chunk = want[i:i + 1000]
        got = r.mget([f"w:{n}" for n in chunk])
        missing += [n for n, v in zip(chunk, got) if v != str(n)]
    print(json.dumps({"checked": len(want), "missing": missing}))


def watch(port: int) -> None:
    r, last = client("127.0.0.1", port), None
    while True:
        try:
            info = r.info()
            now = tuple(str(info.get(k, "-")) for k in WATCHED)
        except redis.RedisError as e:
            now = ("error", kind(e), "-", "-", "-")
        if now != last:
            print(f"{time.time():.4f} " + " ".join(now), flush=True)
            last = now
        time.sleep(0.02)


def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "write":
        write(args[0], int(args[1]))
    elif mode == "check":
        check(args[0], int(args[1]))
    elif mode == "watch":
        watch(int(args[0]))
    else:
        sys.exit(f"unknown mode {mode!r}: write, check or watch")


if __name__ == "__main__":
    main(sys.argv[1:])
