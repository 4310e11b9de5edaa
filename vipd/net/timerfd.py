"""A CLOCK_MONOTONIC timerfd, for the driver's one protocol timer.

asyncio sleeps in epoll with a timeout rounded up to whole milliseconds, and the kernel adds
timer slack (0.1 % of the timeout) to it: a 3.6 s Master_Down_Interval fired ~3 ms late. A timerfd
armed at an absolute time wakes epoll on time (keepalived does the same). Python before 3.13 has
no os.timerfd_*, so this goes through libc with ctypes.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

CLOCK_MONOTONIC = 1
TFD_NONBLOCK = os.O_NONBLOCK
TFD_CLOEXEC = os.O_CLOEXEC
TFD_TIMER_ABSTIME = 1


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.timerfd_create.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.timerfd_settime.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(_Itimerspec),
                                  ctypes.c_void_p]


class TimerFd:
    """Readable once the monotonic clock (time.monotonic(), asyncio's loop.time()) reaches the
    armed time; ``clear()`` after each wake-up."""

    def __init__(self) -> None:
        fd = _libc.timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)
        if fd < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"timerfd_create: {os.strerror(e)}")
        self._fd = fd
        self._spec = _Itimerspec()     # reused: arming allocates nothing

    def fileno(self) -> int:
        return self._fd

    def set(self, when: float) -> None:
        """Arm at absolute monotonic time ``when`` (seconds); a time in the past fires at once."""
        if when <= 0:
            when = 1e-9               # all-zero it_value would disarm the timer
        sec = int(when)
        self._spec.it_value.tv_sec = sec
        self._spec.it_value.tv_nsec = int((when - sec) * 1e9)
        if _libc.timerfd_settime(self._fd, TFD_TIMER_ABSTIME, ctypes.byref(self._spec), None) < 0:
            e = ctypes.get_errno()
            raise OSError(e, f"timerfd_settime: {os.strerror(e)}")

    def clear(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self._fd)
