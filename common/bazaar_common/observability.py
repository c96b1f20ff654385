"""Error reporting (Sentry) and tracing (OpenTelemetry), switched on by environment variables.

* ``SENTRY_DSN``: report errors to Sentry (web and worker processes alike).
* ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``): export traces over
  OTLP/HTTP; ``OTEL_TRACES_CONSOLE=1`` prints spans instead (development). Without either, no
  spans are recorded, but the W3C ``traceparent`` header is still passed along by the gateway, the
  HTTP client and the outbox.
* ``OTEL_TRACES_SAMPLER_ARG``: the ratio of new traces kept (default 1.0). Sampling is parent
  based: a request that arrives with a sampled ``traceparent`` is always traced, so a trace is
  never cut into pieces by one service's ratio. A client span with no parent is never a trace
  (see :mod:`bazaar_common.sampling`): background polling is not traced.

What is traced, in every web *and* worker process: Django requests (server spans), every urllib3
request (client spans; a call of the resilient HTTP client is one span per attempt, named after the
service, see :func:`bazaar_common.http.name_attempt_span`), psycopg2 queries (a span per statement,
the SQL without its parameters), Redis commands and Celery tasks (publish and run spans; the trace
context travels in the message headers, see :mod:`bazaar_common.outbox.services`). The gateway's
proxy path, which bypasses Django, opens its own server span (:mod:`gateway.routing.proxy`).
Attributes follow the stable HTTP and database semantic conventions
(``OTEL_SEMCONV_STABILITY_OPT_IN``, default ``http,database``). The exporter is OpenTelemetry's
own and reads the standard ``OTEL_EXPORTER_OTLP_*`` variables (``…_TRACES_ENDPOINT``,
``…_HEADERS``, ``…_TIMEOUT``, ``…_COMPRESSION``; see ``docs/observability.md``).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)
_initialised = False
_tracing = False
REQUEST_ID_ATTRIBUTE = "bazaar.request_id"


def tracing_enabled() -> bool:
    """True once :func:`init_observability` set up a real tracer provider in this process."""
    return _tracing


def tag_span_with_request_id(request_id: str) -> None:
    """The request id on the current span (a request's or a task's), so that the trace of a log
    line is found by its request id and every span a request caused can be told by it."""
    if _tracing:
        from opentelemetry import trace

        trace.get_current_span().set_attribute(REQUEST_ID_ATTRIBUTE, request_id)


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
    # The traces-only URL wins, as the specification says; given to the exporter explicitly, since
    # the chart lists both and the exporter would take an empty one as the URL.
    base = (os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").rstrip("/")
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (f"{base}/v1/traces" if base else "")
    console = os.environ.get("OTEL_TRACES_CONSOLE") == "1"
    if not endpoint and not console:
        return
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    from bazaar_common.sampling import trace_sampler

    ratio = float(os.environ.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"bazaar-{service}"}),
        sampler=trace_sampler(ratio),
    )
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    if console:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)
    instrument_libraries()
    _tracing = True
    logger.info("tracing on", extra={"endpoint": endpoint or "console", "ratio": ratio})


def instrument_libraries() -> None:
    """Spans for Django, urllib3, psycopg2, Redis and Celery in this process (idempotent)."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.psycopg2 import Psycopg2Instrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    _opt_in_stable_conventions()
    instrument_django()
    instrument_http_client()
    # Django's connections are made after this (lazily, per thread): their cursors are traced.
    Psycopg2Instrumentor().instrument()
    RedisInstrumentor().instrument()
    CeleryInstrumentor().instrument()


HOST_CHECK_MIDDLEWARE = "bazaar_common.errors.JsonErrorMiddleware"


def instrument_django() -> None:
    """Server spans for Django's requests, except health probes (most of the spans, telling nothing)."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    DjangoInstrumentor().instrument(
        excluded_urls="healthz,readyz", middleware_position=django_span_position(), request_hook=tag_request_span
    )


def tag_request_span(span: Any, request: Any) -> None:
    """The request id on a request's server span, tagged as the span starts: the request id
    middleware runs outside the span's middleware (see :func:`django_span_position`), so the span
    does not exist yet when that middleware sees the request."""
    request_id = getattr(request, "request_id", None)
    if request_id and span.is_recording():
        span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)


def django_span_position() -> int:
    """Where OpenTelemetry's Django middleware goes: just inside the middleware that refuses a
    foreign Host. At its default place (outermost) it reads the Host for its span attributes first,
    and Django then answers a foreign Host with its own 400 page instead of our problem body."""
    from django.conf import settings

    middleware = list(getattr(settings, "MIDDLEWARE", []))
    return middleware.index(HOST_CHECK_MIDDLEWARE) + 1 if HOST_CHECK_MIDDLEWARE in middleware else 0


def instrument_http_client() -> None:
    """Client spans for urllib3, named after the service for the resilient client's attempts.

    Not traced, as each would be a trace of its own every few seconds or per error: the health
    probes (``/healthz``, ``/readyz``) and what Sentry's transport sends (``SENTRY_DSN``'s host);
    nor ``OTEL_PYTHON_URLLIB3_EXCLUDED_URLS`` (comma-separated regular expressions). The span
    exporter's own requests are never traced (the SDK suppresses instrumentation while exporting).
    """
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

    from bazaar_common.http import name_attempt_span

    _opt_in_stable_conventions()
    excluded = ["/healthz", "/readyz", os.environ.get("OTEL_PYTHON_URLLIB3_EXCLUDED_URLS", "")]
    excluded.append(_sentry_url_pattern(os.environ.get("SENTRY_DSN") or ""))
    URLLib3Instrumentor().instrument(
        request_hook=name_attempt_span, excluded_urls=",".join(pattern for pattern in excluded if pattern)
    )


def _opt_in_stable_conventions() -> None:
    # Read once, by the first instrumentation switched on: the stable attribute names
    # (http.request.method, url.full, db.query.text...), the ones the gateway's own span uses.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http,database")


def _sentry_url_pattern(dsn: str) -> str:
    """A regular expression matching the URLs Sentry's transport posts to for ``dsn`` (its host and
    port, not every URL of that host: on a laptop that is 127.0.0.1, like every service)."""
    parts = urlsplit(dsn)
    if not parts.hostname:
        return ""
    port = re.escape(f":{parts.port}") if parts.port else r"(:\d+)?"
    return f"//{re.escape(parts.hostname)}{port}/"
