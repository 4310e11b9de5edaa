"""Runs the named health checks periodically, concurrently, never blocking the loop.

A check program exits 0 when healthy; anything else, or its timeout, is a failure (on timeout
its whole process group is killed). A built-in check (http, tcp, redis, sentinel: vipd/probes)
runs on the event loop instead, under the same timeout and with the same result. Results go
through rise/fall; the first line of output is logged when the state changes.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from vipd.confchecks import CheckConfig
from vipd.core.tracking import RiseFall
from vipd.hooks import run_program
from vipd.probes.run import make_probe, run_probe

log = logging.getLogger("vipd.checks")


class CheckRunner:
    on_result = None    # called (name, ok, changed, returncode, output, duration) after each run

    def __init__(self, cfg: CheckConfig, on_change: Callable[["CheckRunner"], None],
                 user: str | None = None) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.health = RiseFall(cfg.rise, cfg.fall)
        self.on_change = on_change
        self.user = user
        self.output = ""
        self.runs = self.failures = self.timeouts = 0
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()        # set: run now, not at the end of the interval
        self.probe = make_probe(cfg, self._wake.set) if cfg.builtin is not None else None

    @property
    def ok(self) -> bool | None:
        return self.health.ok

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"check {self.name}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        if self.probe is not None:
            await self.probe.close()

    async def run_once(self) -> bool:
        if self.probe is not None:
            res = await run_probe(self.probe, self.cfg.timeout)
        else:
            res = await run_program(self.cfg.command, self.cfg.timeout, user=self.user)
        self.runs += 1
        if not res.ok:
            self.failures += 1
            if res.returncode is None:
                self.timeouts += 1
        self.output = res.output
        changed = self.health.update(res.ok)
        if self.on_result:
            self.on_result(self.name, res.ok, changed, res.returncode, res.output, res.duration)
        if changed:
            log.info("check %s %s: %s", self.name, "up" if self.health.ok else "DOWN",
                     res.output or f"exit {res.returncode}")
            self.on_change(self)
        return res.ok

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.run_once()
            except Exception:       # a broken check never takes the daemon down
                log.exception("check %s crashed", self.name)
            try:
                async with asyncio.timeout(max(0.0, self.cfg.interval - (loop.time() - started))):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    def status(self) -> dict:
        return {"ok": self.health.ok, "kind": self.cfg.kind, "output": self.output, "runs": self.runs,
                "failures": self.failures, "timeouts": self.timeouts,
                "weight": self.cfg.weight}
