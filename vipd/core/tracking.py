"""Tracked checks and interfaces: rise/fall counters and the effective priority, sans-IO."""
from __future__ import annotations

from dataclasses import dataclass, field

OWNER_PRIORITY = 255


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
