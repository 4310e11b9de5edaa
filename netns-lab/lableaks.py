"""Lab teardown that says what it left behind, so a leak fails the test that caused it."""
from __future__ import annotations

import pathlib
import time

from typing import TYPE_CHECKING

from labproc import NETNS_DIR, namespace_keys, pids_in

if TYPE_CHECKING:    # lab imports nothing of this module: no cycle, only the type
    from lab import Lab

# How long a process killed at teardown may take to be gone (SIGKILL is not instant on a loaded
# machine: the task must be scheduled to die). Polled, so a quick exit costs nothing.
LEAK_GRACE = 5.0


def teardown_leaks(lab: Lab, grace: float = LEAK_GRACE) -> list[str]:
    """Takes lab down and says what it left: its own teardown problems, namespaces still named,
    and processes still alive in any of its namespaces (found by namespace identity, so also
    after the names are gone), waited for up to `grace` seconds."""
    keys = namespace_keys(lab.namespaces)      # before down(): it deletes the names
    problems = [f"lab {lab.prefix}: {p}" for p in lab.down()]
    left = [n for n in lab.namespaces if (NETNS_DIR / n).exists()]
    if left:
        problems.append(f"lab {lab.prefix}: namespaces still present: {left}")
    end = time.monotonic() + grace
    while (pids := pids_in(keys)) and time.monotonic() < end:
        time.sleep(0.05)
    for pid in pids:
        try:
            cmd = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            cmd = "?"
        problems.append(f"lab {lab.prefix}: process {pid} still running in its namespace: {cmd}")
    return problems
