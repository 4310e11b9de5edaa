"""vipd under systemd's Type=notify protocol, with a real $NOTIFY_SOCKET listener: READY=1 once
every instance has started, STATUS= on transitions, RELOADING=1/READY=1 around a reload,
STOPPING=1 on SIGTERM, and WATCHDOG=1 from the event loop (none while the loop is stopped).
The unit file passes `systemd-analyze verify` where the tool exists."""
import os
import pathlib
import re
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import REPO, VIPD, vipd_config, wait_state

pytestmark = pytest.mark.lab


# Linux's SO_TIMESTAMPNS (asm-generic/socket.h; the socket module does not name it): each
# datagram carries the kernel's arrival time, so gaps are measured at the socket, not when this
# (possibly descheduled) test process gets round to reading.
SO_TIMESTAMPNS = 35
WATCHDOG_USEC = 200000
WATCHDOG_SEC = WATCHDOG_USEC / 1e6


class Listener:
    def __init__(self, path: pathlib.Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.got: list[tuple[float, str]] = []      # (arrival, CLOCK_REALTIME seconds; message)

    def drain(self) -> list[str]:
        while True:
            try:
                data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(16))
            except BlockingIOError:
                return [m for _, m in self.got]
            sec, nsec = next(struct.unpack("qq", d[:16]) for lvl, typ, d in anc
                             if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS)
            self.got.append((sec + nsec / 1e9, data.decode()))

    def wait(self, pattern: str, timeout: float = 10.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for m in self.drain():
                if re.search(pattern, m, re.M):
                    return m
            time.sleep(0.02)
        raise AssertionError(f"no {pattern!r} in {self.drain()}")

    def pings(self, seconds: float) -> tuple[float, float, list[float]]:
        """The window's start and end and the arrival times of the WATCHDOG=1 messages in it
        (kernel time stamps: a late read does not move them). Read as they come: the socket
        queues only net.unix.max_dgram_qlen (10) datagrams, and the daemon drops a ping that
        does not fit."""
        self.drain()
        start = time.time()
        while time.time() < start + seconds:
            time.sleep(0.02)
            self.drain()
        end = time.time()
        return start, end, [t for t, m in self.got if m == "WATCHDOG=1" and start <= t <= end]


def assert_pinging(window: tuple[float, float, list[float]]) -> None:
    """The daemon pings every WatchdogSec/2 (sd_watchdog_enabled(3)'s advice), so a gap is that
    plus the loop's latency; systemd restarts the service on a gap of WatchdogSec. Asserted: no
    gap (window edges included) reaches WatchdogSec, the median gap is about WatchdogSec/2 (a
    daemon pinging every WatchdogSec has ~0.2 s), and the rate over the time actually covered
    is not above 2/WatchdogSec (two ping chains would double it)."""
    start, end, times = window
    marks = [start] + times + [end]
    gaps = sorted(b - a for a, b in zip(times, times[1:]))
    assert len(times) >= 3, window
    rate = (len(times) - 1) / (times[-1] - times[0])
    print(f"\n{len(times)} pings in {end - start:.2f} s: median gap {gaps[len(gaps) // 2]:.3f} s,"
          f" largest {max(gaps):.3f} s, {rate:.1f}/s")
    assert max(b - a for a, b in zip(marks, marks[1:])) < WATCHDOG_SEC, window
    assert 0.9 * WATCHDOG_SEC / 2 <= gaps[len(gaps) // 2] <= 1.5 * WATCHDOG_SEC / 2, gaps
    assert 0.6 * 2 / WATCHDOG_SEC <= rate <= 1.1 * 2 / WATCHDOG_SEC, rate


def test_notify_protocol_and_watchdog(lab):
    h1 = lab.hosts[0]
    listener = Listener(lab.workdir / "notify.sock")
    text = vipd_config(priority=150) + vipd_config(name="other", vrid=52, priority=150,
                                                   vips=("198.51.100.101/24",))
    conf = lab.write("h1/vipd.toml", text + f'[global]\nsocket = "{lab.workdir}/h1.sock"\n')
    proc = lab.spawn(h1, [VIPD, "run", "-c", conf], name="vipd",
                     env={"NOTIFY_SOCKET": str(lab.workdir / "notify.sock"),
                          "WATCHDOG_USEC": str(WATCHDOG_USEC), "PYTHONUNBUFFERED": "1"})
    proc.socket = f"{lab.workdir}/h1.sock"
    ready = listener.wait("^READY=1$")
    assert "STATUS=2 instance(s): 2 BACKUP" in ready
    listener.wait("^STATUS=2 instance\\(s\\): 2 MASTER$")
    assert wait_state(lab, proc, "MASTER")

    # Pings at half of WATCHDOG_USEC; none while the loop cannot run (the process is stopped).
    assert_pinging(listener.pings(1.0))
    proc.freeze()
    time.sleep(0.05)                 # pings sent before the stop are drained below
    assert listener.pings(0.6)[2] == []
    proc.thaw()
    assert_pinging(listener.pings(0.5))

    listener.got.clear()
    proc.send_signal(signal.SIGHUP)
    reloading = listener.wait("^RELOADING=1$")
    assert re.search(r"^MONOTONIC_USEC=\d+$", reloading, re.M)
    after = listener.wait("^READY=1$")
    assert [m for m in listener.drain() if "RELOADING" in m or "READY" in m] == [reloading, after]

    assert proc.stop(signal.SIGTERM) == 0
    msgs = listener.drain()
    assert "STOPPING=1" in msgs


def test_watchdog_off_for_another_pid(lab):
    h1 = lab.hosts[0]
    listener = Listener(lab.workdir / "notify.sock")
    conf = lab.write("h1/vipd.toml", vipd_config(priority=150)
                     + f'[global]\nsocket = "{lab.workdir}/h1.sock"\n')
    proc = lab.spawn(h1, [VIPD, "run", "-c", conf], name="vipd",
                     env={"NOTIFY_SOCKET": str(lab.workdir / "notify.sock"),
                          "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"})
    listener.wait("^READY=1$")
    time.sleep(0.5)
    assert "WATCHDOG=1" not in listener.drain()
    proc.stop(signal.SIGTERM)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_unit_file_verifies(tmp_path):
    unit = (REPO / "etc" / "systemd" / "vipd.service").read_text()
    assert "Type=notify" in unit and "WatchdogSec=" in unit
    path = tmp_path / "vipd.service"

    def verify(text: str) -> subprocess.CompletedProcess:
        path.write_text(text.replace("/usr/local/bin/vipd", VIPD))
        return subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                              text=True, env={**os.environ, "SYSTEMD_LOG_LEVEL": "warning"})
    r = verify(unit)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    broken = verify(unit.replace("Type=notify", "Type=notfy"))    # the check can fail
    assert "Failed to parse service type" in broken.stderr, broken.stderr
