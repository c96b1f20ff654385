"""Error reporting (Sentry) and tracing (OpenTelemetry), switched on by environment variables.

* ``SENTRY_DSN``: report errors to Sentry (web and worker processes alike).
* ``OTEL_EXPORTER_OTLP_ENDPOINT``: export traces over OTLP/HTTP; ``OTEL_TRACES_CONSOLE=1`` prints
  spans instead (development). Without either, no spans are recorded, but the W3C ``traceparent``
  header is still passed along by the gateway, the HTTP client and the outbox.
* ``OTEL_TRACES_SAMPLER_ARG``: the ratio of new traces kept (default 1.0). Sampling is parent
  based: a request that arrives with a sampled ``traceparent`` is always traced, so a trace is
  never cut into pieces by one service's ratio.

What is traced, in every web *and* worker process: Django requests (server spans), the resilient
HTTP client (a client span per upstream attempt, opened by :mod:`bazaar_common.http` itself: the
urllib3 and psycopg2 instrumentations are not released for the OpenTelemetry version pinned),
Redis commands and Celery tasks (publish and run spans; the trace context travels in the message
headers, see :mod:`bazaar_common.outbox.services`). Database queries have no spans yet.
The gateway's proxy path, which bypasses Django, opens its
own server span (:mod:`gateway.routing.proxy`).
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)
_initialised = False
_tracing = False


def tracing_enabled() -> bool:
    """True once :func:`init_observability` set up a real tracer provider in this process."""
    return _tracing


def init_observability(service: str) -> None:
    global _initialised
    if _initialised:
        return
    _initialised = True
    _init_sentry(service)
    _init_tracing(service)


def _init_sentry(service: str) -> None:
    dsn = os.environ.get("SENTRY_DSN")
    if not dsn:
        return
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        environment=os.environ.get("SENTRY_ENVIRONMENT", "development"),
        release=os.environ.get("SERVICE_VERSION"),
        traces_sample_rate=float(os.environ.get("SENTRY_TRACES_SAMPLE_RATE", "0")),
        server_name=service,
        send_default_pii=False,
    )


def _init_tracing(service: str) -> None:
    global _tracing
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    console = os.environ.get("OTEL_TRACES_CONSOLE") == "1"
    if not endpoint and not console:
        return
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    ratio = float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"bazaar-{service}"}),
        sampler=ParentBased(TraceIdRatioBased(ratio)),
    )
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if console:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    _instrument_libraries()
    _tracing = True
    logger.info("tracing on", extra={"endpoint": endpoint or "console", "ratio": ratio})


def _instrument_libraries() -> None:
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    # Health probes would be most of the spans and tell nothing.
    DjangoInstrumentor().instrument(excluded_urls="healthz,readyz")
    RedisInstrumentor().instrument()
    CeleryInstrumentor().instrument()
