"""Prometheus metrics: one registry per app, so tests and several apps in one process never clash."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.messages = Counter("gradbot_messages", "Callbacks handled, by kind of message", ["kind"], registry=r)
        self.duplicates = Counter("gradbot_duplicates", "WeChat retries answered without re-running", registry=r)
        self.deferred = Counter(
            "gradbot_deferred_replies", "Replies answered 'success' and sent later by CS message", registry=r
        )
        self.reply_seconds = Histogram(
            "gradbot_reply_seconds", "Time from request to callback response", registry=r,
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2, 4.5, 10),
        )
        self.rejected = Counter(
            "gradbot_rejected_requests", "Callbacks refused, by reason", ["reason"], registry=r
        )
        self.api_errors = Counter(
            "gradbot_wechat_api_errors", "WeChat API calls that returned an errcode", ["errcode"], registry=r
        )
        self.notifications = Counter(
            "gradbot_notifications", "Outbound notifications", ["kind", "outcome"], registry=r
        )
        self.payments = Counter("gradbot_payments", "Payment events", ["outcome"], registry=r)
        self.busy = Counter("gradbot_busy_replies", "Students told 系统繁忙 (state store, turn or handler failed)",
                            registry=r)
        self.retention = Counter("gradbot_retention_deleted", "Files deleted by retention", ["kind"], registry=r)
        self.retention_last = Gauge("gradbot_retention_last_run_timestamp_seconds",
                                    "When the nightly retention last finished", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
