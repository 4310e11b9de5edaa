"""Tracked files (keepalived track_file): another tool writes a number, vipd adds number x weight.

keepalived watches with inotify; vipd stats each tracked file every POLL seconds and reads it
only when its identity, size or modification time changed, which costs one stat() per file per
poll and needs no inotify binding. A change is therefore seen within POLL seconds.
"""
from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Iterable

from vipd.core.tracking import track_file_value

log = logging.getLogger("vipd")
POLL = 0.5
_READ_MAX = 128             # keepalived reads at most this much of the file


class FileTracker:
    """Holds the current value of every tracked file and calls ``on_change(path)`` when one
    changes."""

    def __init__(self, on_change: Callable[[str], None]) -> None:
        self.values: dict[str, int] = {}
        self._seen: dict[str, tuple | None] = {}
        self._on_change = on_change
        self._handle: asyncio.TimerHandle | None = None

    def track(self, paths: Iterable[str]) -> None:
        """Track exactly these paths (reload may add or drop some); read new ones at once."""
        paths = set(paths)
        for gone in set(self.values) - paths:
            del self.values[gone]
            self._seen.pop(gone, None)
        for path in paths - set(self.values):
            self._seen[path], self.values[path] = self._read(path, ())   # (): never read
        if paths and self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(POLL, self._poll)
        elif not paths and self._handle is not None:
            self.close()

    def _poll(self) -> None:
        self._handle = asyncio.get_running_loop().call_later(POLL, self._poll)
        for path in list(self.values):
            seen, value = self._read(path, self._seen.get(path, ()))
            self._seen[path] = seen
            if value is not None and value != self.values[path]:
                log.info("track file %s: %d -> %d", path, self.values[path], value)
                self.values[path] = value
                self._on_change(path)

    @staticmethod
    def _read(path: str, seen: tuple | None) -> tuple[tuple | None, int | None]:
        """(stat identity, value); value None when the file did not change since ``seen`` (the
        previous identity; None: it was missing; (): never read)."""
        try:
            st = os.stat(path)
        except OSError:
            return None, (None if seen is None else 0)   # None: it was missing already
        ident = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if ident == seen:
            return seen, None
        try:
            with open(path, "rb") as f:
                text = f.read(_READ_MAX).decode("ascii", "replace")
        except OSError as e:
            log.warning("track file %s unreadable (counts as 0): %s", path, e.strerror or e)
            return ident, 0
        return ident, track_file_value(text)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
