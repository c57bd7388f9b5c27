"""Counters of a live source: what arrived, what was dropped and why, and the delivery latency."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import numpy as np

LATENCY_SAMPLES = 4096  # the percentiles describe the most recent deliveries


@dataclass
class LiveStats:
    """Counts kept by a source's receiving thread and its consumer (plain ints: one writer each).

    ``dropped_events``/``dropped_blocks`` are what the bounded queue threw away (oldest first) when
    the consumer fell behind; ``skipped_packets`` are packets with an undecodable payload that
    were counted and skipped; ``out_of_order`` datagrams went back in time (dropped, as faery's receiver does);
    ``truncated_datagrams`` ended inside an event (the partial event dropped); ``lost_datagrams`` is
    the kernel's count of datagrams it dropped on a full socket buffer; ``reconnects`` counts
    connections made again after a reset or refusal. ``events``, ``packets`` and ``bytes`` count
    what was received; ``started`` is the ``time.monotonic`` of the start; ``latencies_us`` holds the
    most recent delivery latencies.
    """

    events: int = 0
    packets: int = 0
    bytes: int = 0
    dropped_events: int = 0
    dropped_blocks: int = 0
    skipped_packets: int = 0
    out_of_order: int = 0
    truncated_datagrams: int = 0
    lost_datagrams: int = 0
    reconnects: int = 0
    started: float = 0.0
    latencies_us: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LATENCY_SAMPLES))

    def record_latency(self, microseconds: float) -> None:
        """Add one delivery latency of ``microseconds`` (receive to hand-over to the consumer)."""
        self.latencies_us.append(microseconds)

    def latency_percentiles(self) -> dict[str, float | None]:
        """p50, p90 and p99 of the recent latencies in microseconds (None before any delivery)."""
        samples = np.array(self.latencies_us, dtype=np.float64)
        if not len(samples):
            return {"p50": None, "p90": None, "p99": None}
        p50, p90, p99 = np.percentile(samples, [50, 90, 99])
        return {"p50": round(float(p50), 1), "p90": round(float(p90), 1), "p99": round(float(p99), 1)}

    def to_dict(self, seconds: float) -> dict:
        """All counters, the event rate over ``seconds`` and the latency percentiles, JSON-ready."""
        names = (
            "events", "packets", "bytes", "dropped_events", "dropped_blocks", "skipped_packets",
            "out_of_order", "truncated_datagrams", "lost_datagrams", "reconnects",
        )  # fmt: skip
        out = {name: getattr(self, name) for name in names}
        out["events_per_second"] = round(self.events / seconds, 1) if seconds > 0 else None
        out["latency_us"] = self.latency_percentiles()
        return out

    def line(self, seconds: float) -> str:
        """One human-readable stats line, rates over ``seconds``."""
        d = self.to_dict(seconds)
        lat = d["latency_us"]
        shown = "n/a" if lat["p50"] is None else f"p50 {lat['p50']:.0f} / p99 {lat['p99']:.0f} us"
        rate = d["events_per_second"] or 0.0
        return (
            f"{d['events']:,} events ({rate:,.0f} ev/s), {d['packets']:,} packets; dropped "
            f"{d['dropped_events']:,} events in {d['dropped_blocks']} blocks, skipped {d['skipped_packets']} "
            f"packets, {d['out_of_order']} out of order, {d['truncated_datagrams']} truncated, "
            f"{d['lost_datagrams']} lost; "
            f"{d['reconnects']} reconnects; latency {shown}"
        )
