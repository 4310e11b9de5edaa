"""The driver's timerfd fires at the armed monotonic time, not rounded up to a millisecond.

Two views: the kernel's own record of the armed time (timerfd_gettime, exact and immune to load),
and wake-ups measured against the clock (a timer rounded up to the millisecond, what asyncio's epoll
timeout does, can never be seen on time).
"""
import ctypes
import select
import statistics
import time

from vipd.net.timerfd import TimerFd


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", Timespec), ("it_value", Timespec)]


libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.timerfd_gettime.argtypes = [ctypes.c_int, ctypes.POINTER(Itimerspec)]


def remaining(t: TimerFd) -> float:
    """Seconds until the armed expiry, as the kernel holds it (0.0: disarmed)."""
    spec = Itimerspec()
    assert libc.timerfd_gettime(t.fileno(), ctypes.byref(spec)) == 0, ctypes.get_errno()
    return spec.it_value.tv_sec + spec.it_value.tv_nsec / 1e9


def test_kernel_holds_the_armed_time_to_the_microsecond():
    t = TimerFd()
    try:
        for delay in (0.0501, 3.6094, 0.0111):
            before = time.monotonic()
            when = before + delay
            t.set(when)
            left = remaining(t)
            after = time.monotonic()
            # when - after <= left <= when - before, give or take the ns truncation
            assert when - after - 1e-6 <= left <= when - before + 1e-6, (delay, left)
            t.clear()
    finally:
        t.close()


def test_fires_on_time_and_rearms():
    """Each trial's delay ends 0.1 ms past a whole millisecond. A timer rounded up to the
    millisecond is >= 0.9 ms late on every trial; the real one is ~0.1 ms late when the process
    is scheduled at once. On a loaded machine most trials are late for other reasons, so trials go
    on (up to 60) until one shows the timer on time: with rounding none ever can."""
    t = TimerFd()
    try:
        lates = []
        for i in range(60):
            delay = (5 + i % 12) / 1000 + 0.0001           # 5.1 ms, 6.1 ms, ...
            when = time.monotonic() + delay
            t.set(when)
            assert select.select([t], [], [], delay + 1.0)[0] == [t]
            lates.append(time.monotonic() - when)
            t.clear()
            if lates[-1] < 0.0005:
                break
        # never before its time (a fixed "not yet" probe would race a descheduled test process)
        assert all(late >= 0 for late in lates)
        print(f"\ntimerfd lateness over {len(lates)} trials: min {min(lates) * 1e3:.3f} ms,"
              f" median {statistics.median(lates) * 1e3:.3f} ms")
        assert min(lates) < 0.0005, lates
        t.set(time.monotonic() - 1)             # a time in the past fires at once
        assert select.select([t], [], [], 0.5)[0] == [t]
        t.clear()
        assert select.select([t], [], [], 0.01)[0] == []          # cleared, one-shot
        assert remaining(t) == 0.0
    finally:
        t.close()
