"""vipd/sdnotify against real AF_UNIX datagram listeners (path and abstract names)."""
import os
import socket
import time

import pytest

from vipd.sdnotify import Notifier


def _listener(address):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(address)
    s.settimeout(2)
    return s


@pytest.mark.parametrize("abstract", [False, True])
def test_messages_reach_the_socket_systemd_names(tmp_path, abstract):
    name = f"@vipd-test-{os.getpid()}" if abstract else str(tmp_path / "notify")
    with _listener(b"\0" + name[1:].encode() if abstract else name) as listener:
        n = Notifier({"NOTIFY_SOCKET": name})
        assert n.enabled
        n.ready("2 instance(s): 2 BACKUP")
        assert listener.recv(4096) == b"READY=1\nSTATUS=2 instance(s): 2 BACKUP"
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        n.reloading()
        lines = listener.recv(4096).decode().split("\n")
        assert lines[0] == "RELOADING=1" and lines[1].startswith("MONOTONIC_USEC=")
        assert before <= int(lines[1].split("=")[1]) <= before + 2_000_000
        n.stopping()
        assert listener.recv(4096) == b"STOPPING=1"
        n.close()


def test_without_notify_socket_nothing_is_sent_and_nothing_fails():
    n = Notifier({})
    assert not n.enabled and n.watchdog_interval is None
    n.ready("x")
    n.watchdog()


def test_a_listener_that_went_away_does_not_raise(tmp_path):
    path = str(tmp_path / "gone")
    _listener(path).close()
    n = Notifier({"NOTIFY_SOCKET": path})
    n.status("still here")      # ECONNREFUSED is logged, not raised


@pytest.mark.parametrize("pid, expected", [(None, 0.25), ("self", 0.25), ("1", None)])
def test_watchdog_interval_is_half_and_only_for_our_pid(tmp_path, pid, expected):
    env = {"NOTIFY_SOCKET": str(tmp_path / "n"), "WATCHDOG_USEC": "500000"}
    if pid is not None:
        env["WATCHDOG_PID"] = str(os.getpid()) if pid == "self" else pid
    assert Notifier(env).watchdog_interval == expected


def test_children_do_not_inherit_the_notify_socket(tmp_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "n"))
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    n = Notifier()
    assert n.enabled and n.watchdog_interval == 0.5
    assert "NOTIFY_SOCKET" not in os.environ and "WATCHDOG_USEC" not in os.environ
