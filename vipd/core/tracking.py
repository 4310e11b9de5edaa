"""Tracked checks and interfaces: rise/fall counters and the effective priority, sans-IO."""
from __future__ import annotations

from dataclasses import dataclass, field

from vipd.core.params import OWNER_PRIORITY


@dataclass
class RiseFall:
    """A check's health with hysteresis: ``rise`` successes in a row to become healthy, ``fall``
    failures in a row to become unhealthy. Before any verdict ``ok`` is None: tracking treats
    that as not failing (as keepalived does), failback gates as not passing. A first success
    decides at once (a host must not wait rise x interval to be usable); a first failure still
    needs ``fall`` in a row, so one slow first run at start-up does not fault the host."""
    rise: int
    fall: int
    ok: bool | None = None
    _streak: int = field(default=0, repr=False)

    def update(self, success: bool) -> bool:
        """Feeds one result; returns True when ``ok`` changed."""
        if self.ok is None:
            if not success:
                self._streak += 1
                if self._streak < self.fall:
                    return False
            self.ok = success
            self._streak = 0
            return True
        if success == self.ok:
            self._streak = 0
            return False
        self._streak += 1
        if self._streak >= (self.rise if success else self.fall):
            self.ok = success
            self._streak = 0
            return True
        return False


def effective_priority(base: int, failing_weights: list[int] | tuple[int, ...]) -> int:
    """Base priority plus the weights of failing tracked items, clamped to 1..254.

    The address owner (255) is never changed: RFC 5798 reserves 255 for it.
    """
    if base == OWNER_PRIORITY:
        return base
    return max(1, min(254, base + sum(failing_weights)))


# ---- keepalived track_file semantics (vrrp_track.c process_track_file) -----------------------

FILE_VALUE_LIMIT = 254
FILE_FAULT = -254        # a result this low puts the instance in FAULT


def track_file_value(text: str | None) -> int:
    """The number in a tracked file as keepalived reads it: strtol(text, 0), so leading blanks,
    a sign, 0x.. hex and 0.. octal are accepted and anything after the number is ignored. A
    missing, unreadable or non-numeric file counts as 0 (no effect with a weight, OK with
    weight 0), so a maintenance flag file only acts while it exists. Clamped to -254..254."""
    if not text:
        return 0
    s = text.lstrip(" \t\n\r\f\v")
    sign = 1
    if s[:1] in "+-" and s[:1]:
        sign, s = (-1 if s[0] == "-" else 1), s[1:]
    if s[:2].lower() == "0x" and s[2:3] and s[2] in "0123456789abcdefABCDEF":
        base, s = 16, s[2:]
    elif s[:1] == "0":
        base = 8
    else:
        base = 10
    digits = "0123456789abcdef"[:base]
    n = 0
    for ch in s:
        d = digits.find(ch.lower())
        if d < 0:
            break
        n = n * base + d
        if n > 1 << 40:      # far past the clamp: stop before a huge file makes a huge int
            break
    return max(-FILE_VALUE_LIMIT, min(FILE_VALUE_LIMIT, sign * n))


def track_file_effect(value: int, weight: int, reverse: bool) -> int | None:
    """What a tracked file does to priority: None for FAULT, else the amount to add.

    weight 0: a non-zero value is a fault (with reverse: a zero value is). Otherwise value x
    weight (negated with reverse), and a result of -254 or less is a fault, as in keepalived."""
    if weight == 0:
        return None if (value != 0) != reverse else 0
    result = value * weight * (-1 if reverse else 1)
    if result <= FILE_FAULT:
        return None
    return min(253, result)


def tracked_applies(healthy: bool | None, reverse: bool) -> bool:
    """Whether a tracked check or interface's weight (or FAULT for weight 0) applies now: while
    it fails, or with keepalived's ``reverse`` while it passes. No verdict yet: neither."""
    if healthy is None:
        return False
    return healthy if reverse else not healthy
