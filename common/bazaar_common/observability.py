"""Error reporting (Sentry) and tracing (OpenTelemetry), switched on by environment variables.

* ``SENTRY_DSN``: report errors to Sentry.
* ``OTEL_EXPORTER_OTLP_ENDPOINT``: export traces over OTLP/HTTP; ``OTEL_TRACES_CONSOLE=1`` prints
  spans instead (development). Without either, no spans are recorded, but the W3C ``traceparent``
  header is still passed along by the gateway and the HTTP client.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)
_initialised = False


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
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    console = os.environ.get("OTEL_TRACES_CONSOLE") == "1"
    if not endpoint and not console:
        return
    from opentelemetry import trace
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider(resource=Resource.create({"service.name": f"bazaar-{service}"}))
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if console:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument()
    logger.info("tracing on", extra={"endpoint": endpoint or "console"})
