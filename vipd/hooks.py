"""Runs programs (notify hooks, checks) without ever blocking the event loop or killing the daemon.

Each run gets its own process group so a timeout kills the program and everything it started;
the child is always reaped (no zombies). Hooks of one instance run one at a time, in the order of
the transitions; while one runs, later requests wait and only the newest waiting one survives
(intermediate states are skipped, the final state's hook always runs).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from dataclasses import dataclass

log = logging.getLogger("vipd.hooks")

# A master hook that exits with this (EX_TEMPFAIL) refuses the promotion: the VIPs are not
# announced and the instance gives the role up (docs/data-safety.md).
REFUSE_PROMOTION = 75


@dataclass
class RunResult:
    returncode: int | None     # None: killed at its timeout
    output: str                # first line of combined stdout/stderr
    duration: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


async def run_program(argv: tuple[str, ...] | list[str], timeout: float,
                      env: dict[str, str] | None = None, user: str | None = None) -> RunResult:
    loop = asyncio.get_running_loop()
    start = loop.time()
    kwargs = {}
    if user:
        kwargs["user"] = user
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, env=env, start_new_session=True, **kwargs)
    except OSError as e:
        return RunResult(127, f"cannot run {argv[0]}: {e.strerror or e}", 0.0)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        rc = proc.returncode
    except asyncio.TimeoutError:
        _kill_group(proc.pid)
        try:
            await asyncio.wait_for(proc.communicate(), 5.0)
        except (asyncio.TimeoutError, OSError):
            pass
        return RunResult(None, f"timed out after {timeout:g}s, killed", loop.time() - start)
    except asyncio.CancelledError:
        _kill_group(proc.pid)
        await proc.wait()
        raise
    first = out.decode(errors="replace").strip().splitlines()[:1]
    return RunResult(rc, first[0] if first else "", loop.time() - start)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class HookQueue:
    """Serialises one instance's notify hooks."""

    on_result = None    # called (instance, state, returncode, output, duration) after each run

    def __init__(self, name: str, timeout: float, user: str | None = None) -> None:
        self.name = name
        self.timeout = timeout
        self.user = user
        self.pending: tuple | None = None      # (argv, env, on_done) waiting its turn
        self.running = False
        self.runs: list[tuple[str, int | None]] = []   # (state, returncode), for status/tests
        self.last: dict | None = None                   # the last run, for status
        self._task: asyncio.Task | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, state: str, argv: tuple[str, ...], env: dict[str, str], on_done=None) -> None:
        if self.pending is not None:
            log.info("[%s] hook for %s skipped: superseded by %s", self.name,
                     self.pending[0], state)
            # the skipped request's continuation still runs so nothing waits forever
            skipped = self.pending[3]
            if skipped:
                skipped(None)
        self.pending = (state, argv, env, on_done)
        self._idle.clear()
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        self.running = True
        try:
            while self.pending is not None:
                state, argv, env, on_done = self.pending
                self.pending = None
                started = time.time()
                res = await run_program(argv, self.timeout, env, self.user)
                self.runs.append((state, res.returncode))
                self.last = {"state": state, "exit": res.returncode, "output": res.output,
                             "time": round(started, 3), "duration": round(res.duration, 3)}
                if self.on_result:
                    self.on_result(self.name, state, res.returncode, res.output, res.duration)
                if res.ok:
                    log.info("[%s] %s hook ok (%.2fs)", self.name, state, res.duration)
                else:
                    log.warning("[%s] %s hook failed (%s): %s", self.name, state,
                                "timeout" if res.returncode is None else f"exit {res.returncode}",
                                res.output)
                if on_done:
                    on_done(res)
        finally:
            self.running = False
            self._idle.set()

    async def wait_idle(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            pass
