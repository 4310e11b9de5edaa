"""The driver's timerfd fires at the armed monotonic time, not rounded up to a millisecond."""
import select
import time

from vipd.net.timerfd import TimerFd


def test_fires_on_time_and_rearms():
    t = TimerFd()
    try:
        lates = []
        for delay in (0.05, 0.2, 0.011):
            when = time.monotonic() + delay
            t.set(when)
            assert select.select([t], [], [], 0.001)[0] == []      # not before its time
            assert select.select([t], [], [], delay + 1.0)[0] == [t]
            lates.append(time.monotonic() - when)
            t.clear()
        assert all(late >= 0 for late in lates)
        assert max(lates) < 0.05, lates        # generous: a loaded CI machine may be slow
        t.set(time.monotonic() - 1)             # a time in the past fires at once
        assert select.select([t], [], [], 0.5)[0] == [t]
        t.clear()
        assert select.select([t], [], [], 0.01)[0] == []          # cleared, one-shot
    finally:
        t.close()
