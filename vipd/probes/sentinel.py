"""The sentinel check: healthy on the host whose address Redis Sentinel names as the primary.

Every run asks all configured sentinels for ``SENTINEL MASTER <name>`` at once and believes the
answer with the highest config-epoch (a failover bumps the epoch, so the newest configuration wins
even while some sentinels still report the old one). A host that gets an answer from fewer than a
majority of the sentinels is not healthy: a primary cut off in a minority must give up the VIP,
since the majority side is electing a new primary.

Between runs one subscription per sentinel listens for ``+switch-master``: when Sentinel
announces a new primary the runner is woken to run at once, so the VIP moves when Sentinel
decides, not at the next interval. Sentinel publishes +switch-master after it has promoted the
replica (REPLICAOF NO ONE), so the VIP never lands on a replica that would answer READONLY.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Callable

import psutil
from redis.exceptions import RedisError

from vipd.probes import Unhealthy, describe_error
from vipd.probes.redisprobe import client

log = logging.getLogger("vipd.checks")

SWITCH_MASTER = "+switch-master"
WATCH_POLL = 1.0           # seconds a subscription read waits for a message


def local_addresses() -> set:
    return {ipaddress.ip_address(a.address.split("%")[0])
            for addrs in psutil.net_if_addrs().values() for a in addrs
            if a.family.name in ("AF_INET", "AF_INET6")}


class SentinelProbe:
    def __init__(self, sentinels: list[tuple[str, int]], master_name: str, password: str | None,
                 timeout: float, wake: Callable[[], None]):
        self.master_name = master_name
        self.where = f"sentinels of {master_name}"
        self.names = [f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in sentinels]
        self.clients = [client(h, p, password, keepalive=True) for h, p in sentinels]
        self.majority = len(sentinels) // 2 + 1
        # each sentinel gets most of the run's timeout; one that does not answer in it counts as
        # unreachable, and the run still ends before the check's own timeout
        self.ask_timeout = timeout * 0.8
        self.wake = wake
        self.watchers: list[asyncio.Task] = []

    async def run(self) -> str:
        if not self.watchers:
            self.watchers = [asyncio.get_running_loop().create_task(
                self._watch(name, sentinel), name=f"watch {name}")
                for name, sentinel in zip(self.names, self.clients)]
        asks = [asyncio.ensure_future(self._ask(c)) for c in self.clients]
        done, pending = await asyncio.wait(asks, timeout=self.ask_timeout)
        for task in pending:
            task.cancel()
        answers, errors = [], []
        for name, task in zip(self.names, asks):
            if task in done and task.exception() is None:
                answers.append(task.result())
            else:
                errors.append(f"{name} " + (describe_error(task.exception()) if task in done
                                            else "did not answer"))
        if len(answers) < self.majority:
            raise Unhealthy(f"reached {len(answers)} of {len(self.clients)} sentinels, "
                            f"need {self.majority}: " + "; ".join(errors))
        epoch, ip, port = max(answers)
        said = f"{self.master_name} primary {ip}:{port} (epoch {epoch}, {len(answers)}/" \
               f"{len(self.clients)} sentinels)"
        if ipaddress.ip_address(ip) not in local_addresses():
            raise Unhealthy(f"{said} is not on this host")
        return f"{said} is on this host"

    async def _ask(self, sentinel) -> tuple[int, str, int]:
        try:
            reply = await sentinel.execute_command("SENTINEL", "MASTER", self.master_name)
        except BaseException:
            if sentinel.connection is not None:
                await sentinel.connection.disconnect()
            raise
        fields = dict(zip(reply[::2], reply[1::2]))
        return int(fields["config-epoch"]), fields["ip"], int(fields["port"])

    async def _watch(self, name: str, sentinel) -> None:
        """Wake the runner on each +switch-master for our master, resubscribing after errors.

        Not ``pubsub.listen()``: once the connection to a sentinel is lost (a sentinel cut off
        from us, found by TCP keepalive), redis-py 8's listen() returned None at once, over and
        over, without ever yielding to the event loop, and the whole daemon stopped (lab: the
        hosts that kept a majority never saw Sentinel's new primary and the control socket
        timed out). get_message() with a timeout either waits up to that timeout or, on such a
        connection, returns at once: a quick empty return is taken as a lost subscription."""
        loop = asyncio.get_running_loop()
        while True:
            pubsub = sentinel.pubsub()
            try:
                await pubsub.subscribe(SWITCH_MASTER)
                quick = 0       # empty returns in a row that did not wait
                while True:
                    asked = loop.time()
                    message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                       timeout=WATCH_POLL)
                    if message is None:
                        # the subscribe confirmation also comes back as None at once: only
                        # several in a row mean a lost connection
                        quick = quick + 1 if loop.time() - asked < WATCH_POLL / 2 else 0
                        if quick > 3:
                            raise ConnectionError("subscription returns nothing at once")
                        continue
                    quick = 0
                    data = message.get("data")
                    if message["type"] == "message" and data.split()[0] == self.master_name:
                        log.info("sentinel %s: %s %s", name, SWITCH_MASTER, data)
                        self.wake()
            except (RedisError, OSError) as e:
                log.debug("sentinel %s: subscription lost: %s", name, describe_error(e))
            finally:
                await pubsub.aclose()
            await asyncio.sleep(1.0)

    async def close(self) -> None:
        for task in self.watchers:
            task.cancel()
        await asyncio.gather(*self.watchers, return_exceptions=True)
        for c in self.clients:
            await c.aclose()
