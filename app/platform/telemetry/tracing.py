"""OpenTelemetry tracing: off unless the standard OTEL_* variables turn it on.

On when OTEL_TRACES_EXPORTER names an exporter (`otlp`, `console`, or any installed
`opentelemetry_traces_exporter` entry point) and OTEL_SDK_DISABLED is not `true`; the rest is the
SDK's own reading of the environment (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
OTEL_TRACES_SAMPLER, OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_BSP_*). Flask, Celery, SQLAlchemy and Redis
are instrumented; a request's span carries its route pattern (`GET /api/calendar/<token>.ics`), never
the raw path or query string, which may hold a token, a secret or a patient's name (`_route_only`).
A ledger row stores the W3C `traceparent` of the span that wrote it, and its run
continues that trace (`job_span`), so one trace runs from the request that captured a lead through
every step its automation took, however long the steps wait in the ledger.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import entry_points

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

TRACER_NAME = "followup"
_W3C = TraceContextTextMapPropagator()  # the column holds a W3C traceparent, whatever OTEL_PROPAGATORS says
# The OTLP exporter this project installs speaks http/protobuf; `otlp` names it (the spec's default).
_ALIASES = {"otlp": "otlp_proto_http"}


# What the WSGI instrumentation copies from the request line: a path may hold a calendar feed's or an
# unsubscribe link's token or SendGrid's inbound secret, a query a patient's name (`?q=`).
_PATH_ATTRIBUTES = ("http.target", "url.path")
_URL_ATTRIBUTES = ("http.url", "url.full")
_QUERY_ATTRIBUTES = ("url.query",)
REDACTED = "REDACTED"  # what OpenTelemetry's own URL redaction writes


class _State:
    provider = None  # the process's TracerProvider while tracing is on
    instrumented_engines: list = []


def exporter_names(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The exporters the environment asks for; none (tracing off) unless OTEL_TRACES_EXPORTER names one."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    return [_ALIASES.get(n, n) for n in names if n and n != "none"]


def provider_from_env(environ: Mapping[str, str] = os.environ):
    """A TracerProvider exporting in batches to the configured exporters, or None: tracing is off."""
    names = exporter_names(environ)
    if not names:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    found = {ep.name: ep for ep in entry_points(group="opentelemetry_traces_exporter")}
    provider = TracerProvider(resource=Resource.create({"service.name": _service_name(environ)}))
    for name in names:
        if name not in found:
            raise ValueError(f"OTEL_TRACES_EXPORTER: no exporter named {name!r} is installed")
        provider.add_span_processor(BatchSpanProcessor(found[name].load()()))
    return provider


def _service_name(environ: Mapping[str, str]) -> str:
    # OTEL_SERVICE_NAME, when set, overrides this in Resource.create.
    return environ.get("OTEL_SERVICE_NAME") or "followup-engine"


def start(provider) -> None:
    """Trace this process through `provider`: Celery and Redis (process-wide) from now on."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    _State.provider = provider
    CeleryInstrumentor().instrument(tracer_provider=provider)
    RedisInstrumentor().instrument(tracer_provider=provider)


def start_from_env() -> bool:
    """Turn tracing on if the environment asks for it (once per process); whether it is on."""
    if _State.provider is None:
        provider = provider_from_env()
        if provider is not None:
            start(provider)
    return _State.provider is not None


def instrument_app(app, engine) -> None:
    """Trace this Flask app's requests and its engine's statements (tracing must be on)."""
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    FlaskInstrumentor.instrument_app(app, tracer_provider=_State.provider, response_hook=_route_only)
    instrumentor = SQLAlchemyInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()  # one call instruments a list of engines: add this one to it
    _State.instrumented_engines.append(engine)
    # The instrumentation declares SQLAlchemy < 2.1 for its optional extra, and would otherwise refuse
    # to instrument 2.1 (silently: no statement spans); it only listens to SQLAlchemy's public
    # cursor-execute events, which 2.1 keeps (tests/ops/test_tracing.py checks the spans).
    instrumentor.instrument(
        engines=_State.instrumented_engines, tracer_provider=_State.provider, skip_dep_check=True
    )


def _route_only(span, status, response_headers) -> None:
    """The Flask instrumentation's response hook: the request's span is named by its route pattern
    (the method alone when no route matched) and every attribute taken from the raw path or query is
    overwritten with the pattern, or REDACTED. It runs once the response starts, before the span ends
    and is exported; the instrumentation sets those attributes after its request hook, so only here
    can they be replaced."""
    if span is None or not span.is_recording():
        return
    from flask import request
    from opentelemetry.util.http import sanitize_method

    from app.platform.telemetry.web import route

    rule = route()
    method = sanitize_method(request.method)
    method = "HTTP" if method == "_OTHER" else method
    span.update_name(f"{method} {rule}" if rule else method)
    recorded = getattr(span, "attributes", None) or {}
    for key in _PATH_ATTRIBUTES:
        if key in recorded:
            span.set_attribute(key, rule or REDACTED)
    for key in _URL_ATTRIBUTES:
        if key in recorded:
            span.set_attribute(key, request.host_url.rstrip("/") + rule if rule else REDACTED)
    for key in _QUERY_ATTRIBUTES:
        if key in recorded:
            span.set_attribute(key, REDACTED)


def stop(app=None) -> None:
    """Turn tracing off again (tests): undo the instrumentation, flush and drop the provider."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    if app is not None:
        FlaskInstrumentor.uninstrument_app(app)
    for instrumentor in (CeleryInstrumentor(), RedisInstrumentor(), SQLAlchemyInstrumentor()):
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
    _State.instrumented_engines = []
    if _State.provider is not None:
        _State.provider.shutdown()
    _State.provider = None


def is_on() -> bool:
    return _State.provider is not None


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span (what a ledger row stores), or None outside a trace."""
    if _State.provider is None:
        return None
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def job_span(*, kind: str, job_id: int, traceparent: str | None) -> Iterator[None]:
    """A ledger row's run as a span: a child of the span that wrote the row (its `traceparent`),
    linked to the delivery's own span (the Celery task that claimed it). A no-op while tracing is off."""
    if _State.provider is None:
        yield
        return
    delivery = trace.get_current_span().get_span_context()
    parent = _W3C.extract({"traceparent": traceparent}) if traceparent else None
    links = [Link(delivery)] if traceparent and delivery.is_valid else []
    tracer = trace.get_tracer(TRACER_NAME, tracer_provider=_State.provider)
    with tracer.start_as_current_span(
        f"job {kind}",
        context=parent,
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={"followup.job.id": job_id, "followup.job.kind": kind},
    ):
        yield
