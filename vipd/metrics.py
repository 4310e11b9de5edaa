"""Prometheus ``/metrics`` served from the daemon's own event loop (no thread).

A custom collector reads the cores' counters, the check runners and the observer at scrape time,
so the receive and timer paths do no metric work at all. Names and labels of the keepalived
series are those keepalived exporters publish (labels ``iname``, ``intf``, ``vrid``), so a
dashboard built for keepalived works unchanged; what keepalived has no name for is ``vipd_*``.
"""
from __future__ import annotations

import asyncio
import copy
import logging
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger("vipd.metrics")

SLICE = 0.002      # seconds of rendering between turns of the event loop
PIECE = 50         # samples rendered at once
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
        """One family at a time, each built just before it is yielded: MetricsServer renders
        and yields the event loop between families, so a scrape never holds the loop long."""
        d = self.d
        labelled = [(rt, [rt.name, rt.cfg.interface, str(rt.cfg.vrid)])
                    for rt in list(d.runtimes.values())]
        state = GaugeMetricFamily("keepalived_vrrp_state",
                                  "VRRP state: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT",
                                  labels=LABELS + ["ip_address"])
        for rt, lab in labelled:
            value = STATE_VALUE.get(str(rt.core.state), 0)
            for vip in rt.vip_addrs:
                state.add_metric(lab + [vip], value)
        yield state
        for name, (doc, keys) in KEEPALIVED_COUNTERS.items():
            fam = CounterMetricFamily(name, doc, labels=LABELS)
            for rt, lab in labelled:
                c = rt.core.counters
                fam.add_metric(lab, sum(c.get(k, 0) for k in keys))
            yield fam
        per_instance = [
            (CounterMetricFamily, "keepalived_release_master",
             "Times this router left the master role", lambda rt: d.observer.released(rt.name)),
            (GaugeMetricFamily, "vipd_effective_priority",
             "Priority after tracked checks and interfaces", lambda rt: rt.core.priority),
            (GaugeMetricFamily, "vipd_failback_pending",
             "1 while a failback waits for its delay, gate or approval",
             lambda rt: 1 if rt.core.failback.pending else 0),
        ]
        for kind, name, doc, get in per_instance:
            fam = kind(name, doc, labels=LABELS)
            for rt, lab in labelled:
                fam.add_metric(lab, get(rt))
            yield fam
        discards = CounterMetricFamily("vipd_discards", "Adverts discarded, by reason",
                                       labels=LABELS + ["reason"])
        for rt, lab in labelled:
            for key, n in sorted(rt.core.counters.items()):
                if key.startswith("discard_"):
                    discards.add_metric(lab + [key[len("discard_"):]], n)
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


class _One:
    """A registry of one family, so generate_latest can render families one at a time."""

    def __init__(self, family) -> None:
        self.family = family

    def collect(self):
        return [self.family]


def _pieces(family, size: int = PIECE):
    """The family's text in parts of ``size`` samples; HELP and TYPE (the first two lines of
    generate_latest's output for one family) only with the first part."""
    samples = family.samples
    for i in range(0, max(len(samples), 1), size):
        part = copy.copy(family)
        part.samples = samples[i:i + size]
        text = generate_latest(_One(part))
        yield text if i == 0 else text.split(b"\n", 2)[2]


def split_address(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class MetricsServer:
    """A minimal HTTP/1.x responder: GET /metrics, one response per connection."""

    def __init__(self, daemon, listen: str) -> None:
        self.listen = listen
        self.registry = CollectorRegistry(auto_describe=False)
        self.collectors = [DaemonCollector(daemon)]
        for c in self.collectors:
            self.registry.register(c)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        host, port = split_address(self.listen)
        self._server = await asyncio.start_server(self._serve, host, port)
        log.info("metrics on http://%s/metrics", self.listen)

    async def close(self) -> None:
        if self._server:
            self._server.close()
            await self._server.wait_closed()

    async def render(self) -> bytes:
        """The registry in prometheus-client's text format, one family at a time, giving the
        loop a turn whenever a slice of work has taken SLICE seconds (200 instances take some
        50 ms in all: too long to hold back adverts and timers)."""
        out = []
        started = time.perf_counter()
        for collector in self.collectors:
            for family in collector.collect():
                for piece in _pieces(family):
                    out.append(piece)
                    if time.perf_counter() - started > SLICE:
                        await asyncio.sleep(0)
                        started = time.perf_counter()
        return b"".join(out)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            method, path = (request.split(b" ", 2) + [b"", b""])[:2]
            if method not in (b"GET", b"HEAD"):
                status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
            elif path.split(b"?")[0] not in (b"/metrics", b"/"):
                status, ctype, body = "404 Not Found", "text/plain", b"try /metrics\n"
            else:
                status, ctype, body = "200 OK", CONTENT_TYPE_LATEST, await self.render()
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
