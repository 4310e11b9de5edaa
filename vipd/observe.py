"""What the driver tells observers: transitions, check results and hook runs.

One small interface instead of metric and event code scattered through the driver: the daemon
calls ``transition``/``check``/``hook`` where those things happen, and this module keeps the
tallies the cores do not (releases of the master role, transitions by reason, hook runs) and fans
each event out to ``vipd events`` subscribers as one JSON-ready dict.

Subscribers are bounded queues: a reader that stops reading is dropped, never waited for, so an
idle ``vipd events`` can not slow the protocol.
"""
from __future__ import annotations

import asyncio
import re
import time
from collections import Counter

SUBSCRIBER_BACKLOG = 1000       # events queued for one subscriber before it is dropped


def reason_kind(reason: str) -> str:
    """The fixed part of a transition reason (addresses, numbers and details cut off), so that
    it can be a metric label without one series per peer address."""
    return re.split(r"[:(\d]", reason, maxsplit=1)[0].strip() or reason


class Observer:
    def __init__(self) -> None:
        self.transitions: Counter = Counter()   # (instance, old, new, reason kind) -> count
        self.hook_runs: Counter = Counter()     # (instance, state) -> runs
        self.hook_failures: Counter = Counter()  # (instance, state) -> failed or timed out
        self.check_durations: dict[str, float] = {}   # check name -> last run's seconds
        self._subscribers: set[asyncio.Queue] = set()

    # ---- what the driver reports ----------------------------------------------------------

    def transition(self, instance: str, vrid: int, old: str, new: str, reason: str) -> None:
        self.transitions[(instance, old, new, reason_kind(reason))] += 1
        self._publish({"event": "transition", "instance": instance, "vrid": vrid, "from": old,
                       "to": new, "reason": reason})

    def released(self, instance: str) -> int:
        """How often ``instance`` left MASTER (keepalived's release_master)."""
        return sum(n for (i, old, _, _), n in self.transitions.items()
                   if i == instance and old == "MASTER")

    def check(self, name: str, ok: bool, changed: bool, returncode: int | None, output: str,
              duration: float) -> None:
        self.check_durations[name] = duration
        self._publish({"event": "check", "check": name, "ok": ok, "changed": changed,
                       "returncode": returncode, "output": output,
                       "duration": round(duration, 6)})

    def hook(self, instance: str, state: str, returncode: int | None, output: str,
             duration: float) -> None:
        self.hook_runs[(instance, state)] += 1
        if returncode != 0:
            self.hook_failures[(instance, state)] += 1
        self._publish({"event": "hook", "instance": instance, "state": state,
                       "returncode": returncode, "timed_out": returncode is None,
                       "output": output, "duration": round(duration, 6)})

    # ---- subscribers (``vipd events``) ------------------------------------------------------

    def subscribe(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(SUBSCRIBER_BACKLOG)
        self._subscribers.add(q)
        return q

    def unsubscribe(self, q: asyncio.Queue) -> None:
        self._subscribers.discard(q)

    def _publish(self, event: dict) -> None:
        if not self._subscribers:
            return
        event = {"time": round(time.time(), 6), **event}
        for q in list(self._subscribers):
            try:
                q.put_nowait(event)
            except asyncio.QueueFull:
                # a reader that stopped reading: drop it (it sees the stream end) rather than
                # hold events for it forever
                self._subscribers.discard(q)
                q.get_nowait()
                q.put_nowait(None)      # the end-of-stream mark the streamer closes on
