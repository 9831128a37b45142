"""Prometheus metrics of one bot: what an operator needs to see that the relay is never the bottleneck.

Each bot owns its registry (not prometheus-client's global one), so several bots in one process (tests,
benchmarks) do not collide.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

# Discord's acknowledgement window is 3 s; the buckets resolve the fast end, where the relay should be.
ACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)


class Metrics:
    """Counters, gauges and the acknowledgement histogram, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.jobs = Gauge("relay_jobs", "Jobs in the store by local status", ["status"], registry=self.registry)
        self.queue_length = Gauge("relay_queue_length", "Jobs waiting for a Midjourney slot",
                                  registry=self.registry)
        self.slots_in_use = Gauge("relay_slots_in_use", "Jobs being sent or running at useapi",
                                  registry=self.registry)
        self.slots_capacity = Gauge("relay_slots_capacity", "Midjourney slots the relay may use now",
                                    registry=self.registry)
        self.useapi_answers = Counter("relay_useapi_answers", "useapi answers by endpoint and HTTP status "
                                      "(0: no answer)", ["endpoint", "code"], registry=self.registry)
        self.mjproxy_answers = Counter("relay_mjproxy_answers", "mj-proxy answers by endpoint and HTTP status "
                                       "(0: no answer)", ["endpoint", "code"], registry=self.registry)
        self.callbacks = Counter("relay_callbacks", "Callback deliveries by outcome", ["outcome"],
                                 registry=self.registry)
        self.discord_failures = Counter("relay_discord_post_failures", "Discord refused or failed a post or edit",
                                        registry=self.registry)
        self.published = Counter("relay_results_published", "Final job states shown in Discord",
                                 registry=self.registry)
        self.ack_latency = Histogram("relay_ack_latency_seconds", "Interaction created to acknowledged",
                                     ["kind"], buckets=ACK_BUCKETS, registry=self.registry)

    def answers_of(self, backend: str) -> Callable[[str, int], None]:
        """The observer a backend's client tells each answer to (endpoint, HTTP status or 0)."""
        counter = self.mjproxy_answers if backend == "mjproxy" else self.useapi_answers

        def observe(endpoint: str, code: int) -> None:
            counter.labels(endpoint=endpoint, code=str(code)).inc()

        return observe

    def callback(self, outcome: str) -> None:
        self.callbacks.labels(outcome=outcome).inc()

    def set_jobs(self, counts: dict[str, int], statuses: tuple[str, ...]) -> None:
        for status in statuses:
            self.jobs.labels(status=status).set(counts.get(status, 0))

    def render(self) -> bytes:
        return generate_latest(self.registry)
