"""Prometheus ``/metrics`` served from the daemon's own event loop (no thread).

A custom collector reads the cores' counters, the check runners and the observer at scrape time,
so the receive and timer paths do no metric work at all. Names and labels of the keepalived
series are those keepalived exporters publish (labels ``iname``, ``intf``, ``vrid``), so a
dashboard built for keepalived works unchanged; what keepalived has no name for is ``vipd_*``.
"""
from __future__ import annotations

import asyncio
import logging

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger("vipd.metrics")

STATE_VALUE = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}   # keepalived's numbering
LABELS = ["iname", "intf", "vrid"]

# keepalived exporter counter -> the core counter keys it sums (vipd/core/instance.py, packet.py)
KEEPALIVED_COUNTERS = {
    "keepalived_advertisements_received": ("Advertisements received", ["adverts_received"]),
    "keepalived_advertisements_sent": ("Advertisements sent", ["adverts_sent"]),
    "keepalived_become_master": ("Times this router became master", ["became_master"]),
    "keepalived_ip_ttl_errors": ("Adverts with a TTL other than 255", ["discard_ttl"]),
    "keepalived_packet_length_errors": ("Adverts too short or with a wrong length", [
        "discard_short", "discard_truncated", "discard_length_mismatch"]),
    "keepalived_invalid_type_received": ("Adverts of another VRRP type or version", [
        "discard_bad_type", "discard_bad_version"]),
    "keepalived_advertisements_interval_errors": ("Adverts with a wrong interval", [
        "discard_interval_mismatch", "discard_interval_zero"]),
    "keepalived_address_list_errors": ("Adverts whose address list differs from ours", [
        "vip_mismatch", "discard_addr_count"]),
    "keepalived_authentication_mismatch": ("Adverts with the wrong password", ["discard_auth"]),
    "keepalived_priority_zero_received": ("Priority-0 adverts received", ["priority0_received"]),
    "keepalived_priority_zero_sent": ("Priority-0 adverts sent", ["priority0_sent"]),
}


class DaemonCollector:
    """Everything is read from the daemon when Prometheus asks, never counted twice."""

    def __init__(self, daemon) -> None:
        self.d = daemon

    def collect(self):
        d = self.d
        obs = d.observer
        state = GaugeMetricFamily("keepalived_vrrp_state",
                                  "VRRP state: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT",
                                  labels=LABELS + ["ip_address"])
        counters = {name: CounterMetricFamily(name, doc, labels=LABELS)
                    for name, (doc, _) in KEEPALIVED_COUNTERS.items()}
        release = CounterMetricFamily("keepalived_release_master",
                                      "Times this router left the master role", labels=LABELS)
        eff = GaugeMetricFamily("vipd_effective_priority",
                                "Priority after tracked checks and interfaces", labels=LABELS)
        pending = GaugeMetricFamily("vipd_failback_pending",
                                    "1 while a failback waits for its delay, gate or approval",
                                    labels=LABELS)
        discards = CounterMetricFamily("vipd_discards", "Adverts discarded, by reason",
                                       labels=LABELS + ["reason"])
        for rt in list(d.runtimes.values()):
            core = rt.core
            lab = [rt.name, rt.cfg.interface, str(rt.cfg.vrid)]
            for vip in rt.vip_addrs:
                state.add_metric(lab + [vip], STATE_VALUE.get(str(core.state), 0))
            c = core.counters
            for name, (_, keys) in KEEPALIVED_COUNTERS.items():
                counters[name].add_metric(lab, sum(c.get(k, 0) for k in keys))
            release.add_metric(lab, obs.released(rt.name))
            eff.add_metric(lab, core.priority)
            pending.add_metric(lab, 1 if core.failback_pending else 0)
            for key, n in sorted(c.items()):
                if key.startswith("discard_"):
                    discards.add_metric(lab + [key[len("discard_"):]], n)
        yield state
        yield from counters.values()
        yield release
        yield eff
        yield pending
        yield discards
        yield from self._checks()
        yield from self._observed()

    def _checks(self):
        d = self.d
        status = GaugeMetricFamily("keepalived_script_status", "Check state: 0 failing, 1 ok",
                                   labels=["name"])
        duration = GaugeMetricFamily("vipd_check_duration_seconds",
                                     "How long the last run of the check took", labels=["name"])
        runs = CounterMetricFamily("vipd_check_runs", "Check runs", labels=["name"])
        fails = CounterMetricFamily("vipd_check_failures", "Failed or timed-out check runs",
                                    labels=["name"])
        for name, runner in sorted(d.checks.items()):
            if runner.ok is not None:
                status.add_metric([name], 1 if runner.ok else 0)
            if name in d.observer.check_durations:
                duration.add_metric([name], d.observer.check_durations[name])
            runs.add_metric([name], runner.runs)
            fails.add_metric([name], runner.failures)
        yield from (status, duration, runs, fails)

    def _observed(self):
        obs = self.d.observer
        hook_runs = CounterMetricFamily("vipd_hook_runs", "Notify hook runs",
                                        labels=["iname", "state"])
        hook_fails = CounterMetricFamily("vipd_hook_failures",
                                         "Notify hook runs that failed or timed out",
                                         labels=["iname", "state"])
        for (iname, st), n in sorted(obs.hook_runs.items()):
            hook_runs.add_metric([iname, st], n)
            hook_fails.add_metric([iname, st], obs.hook_failures.get((iname, st), 0))
        trans = CounterMetricFamily("vipd_transitions", "State transitions, by reason",
                                    labels=["iname", "from_state", "to_state", "reason"])
        for (iname, old, new, why), n in sorted(obs.transitions.items()):
            trans.add_metric([iname, old, new, why], n)
        rx = CounterMetricFamily("vipd_rx_errors",
                                 "Datagrams dropped before reaching an instance, by reason",
                                 labels=["reason"])
        for reason, n in sorted(self.d.rx_errors.items()):
            rx.add_metric([reason], n)
        yield from (hook_runs, hook_fails, trans, rx)


def split_address(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class MetricsServer:
    """A minimal HTTP/1.x responder: GET /metrics, one response per connection."""

    def __init__(self, daemon, listen: str) -> None:
        self.listen = listen
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(DaemonCollector(daemon))
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        host, port = split_address(self.listen)
        self._server = await asyncio.start_server(self._serve, host, port)
        log.info("metrics on http://%s/metrics", self.listen)

    async def close(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            method, path = (request.split(b" ", 2) + [b"", b""])[:2]
            if method not in (b"GET", b"HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path.split(b"?")[0] not in (b"/metrics", b"/"):
                status, ctype, body = "404 Not Found", "text/plain", b"try /metrics\n"
            else:
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, generate_latest(self.registry)
            head = (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
            writer.write(head + (body if method != b"HEAD" else b""))
            await writer.drain()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ConnectionError):
            pass
        except Exception:      # a scrape must never take the daemon down
            log.exception("metrics request failed")
        finally:
            writer.close()
