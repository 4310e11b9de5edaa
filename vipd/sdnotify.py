"""systemd's service notification protocol (sd_notify(3)) without libsystemd.

Each message is one datagram of newline-separated KEY=VALUE lines sent to the AF_UNIX socket named
by $NOTIFY_SOCKET; a name starting with '@' is in the abstract namespace. Without $NOTIFY_SOCKET
(not started by systemd with Type=notify) every call does nothing. A failed send is logged and
otherwise ignored: systemd being away must never stop the daemon.

Watchdog: $WATCHDOG_USEC asks for WATCHDOG=1 at least that often; sd_watchdog_enabled(3) says to
honour it only when $WATCHDOG_PID is unset or is our own pid. The driver pings from its event loop
at half the interval, so a loop that is stuck stops pinging and systemd restarts the service.
"""
from __future__ import annotations

import logging
import os
import socket
import time

log = logging.getLogger("vipd")


def _address(name: str) -> str | bytes:
    return b"\0" + name[1:].encode() if name.startswith("@") else name


class Notifier:
    def __init__(self, environ=os.environ) -> None:
        name = environ.get("NOTIFY_SOCKET", "")
        self._address = _address(name) if name else None
        self._sock: socket.socket | None = None
        if self._address is not None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)
        self.watchdog_interval: float | None = None     # seconds between pings, None: off
        usec, pid = environ.get("WATCHDOG_USEC", ""), environ.get("WATCHDOG_PID", "")
        if self._sock and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 2e6
        # Hooks and checks are our children: they must not speak for us.
        for key in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            if environ is os.environ:
                os.environ.pop(key, None)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, *fields: str) -> None:
        if self._sock is None:
            return
        try:
            self._sock.sendto("\n".join(fields).encode(), self._address)
        except OSError as e:
            log.debug("sd_notify %s: %s", fields, e)

    def ready(self, status: str) -> None:
        self.notify("READY=1", "STATUS=" + status)

    def status(self, status: str) -> None:
        self.notify("STATUS=" + status)

    def reloading(self) -> None:
        # systemd >= 253 (Type=notify-reload) wants the CLOCK_MONOTONIC time of the request.
        self.notify("RELOADING=1",
                    f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> None:
        self.notify("STOPPING=1")

    def watchdog(self) -> None:
        self.notify("WATCHDOG=1")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
