"""Prometheus metrics exported on ``/metrics``. One registry for the whole process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

CONNECTION_UP = Gauge(
    "telephonist_connection_up",
    "1 when the connection to the component is up",
    ["component"],
    registry=REGISTRY,
)
CALLS = Counter(
    "telephonist_calls_total", "Calls taken by a Stasis route", ["route"], registry=REGISTRY
)
CALLS_ACTIVE = Gauge(
    "telephonist_calls_active", "Calls currently inside telephonist", registry=REGISTRY
)
EVENTS_PUBLISHED = Counter(
    "telephonist_events_published_total", "Outbox events delivered to MQTT", registry=REGISTRY
)
OUTBOX_PENDING = Gauge(
    "telephonist_outbox_pending", "Outbox events waiting for the broker", registry=REGISTRY
)
AGI_SESSIONS = Counter(
    "telephonist_agi_sessions_total",
    "FastAGI connections by outcome",
    ["outcome"],
    registry=REGISTRY,
)
IVR_DIGIT_TO_PROMPT = Histogram(
    "telephonist_ivr_digit_to_prompt_seconds",
    "From the caller's digit (Asterisk's timestamp) to the next prompt started",
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
    registry=REGISTRY,
)
LOOP_FAILURES = Counter(
    "telephonist_loop_failures_total",
    "Unexpected errors that stopped a background loop of serve (it was restarted)",
    ["loop"],
    registry=REGISTRY,
)
LOOP_UP = Gauge(
    "telephonist_loop_up",
    "1 while the background loop runs, 0 while it waits to be restarted after an error",
    ["loop"],
    registry=REGISTRY,
)
