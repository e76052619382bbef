"""Tracing with OpenTelemetry: spans for requests, checkout steps, statements and events.

Off unless an OTLP endpoint is configured (or a test hands in an exporter): then nothing
but a flag check runs on the hot path, since `span` returns a shared empty context and the
request and statement hooks are not even installed. On, spans go through a batch processor
to an OTLP/HTTP collector, and the W3C trace context travels inside each event's headers,
so the consumers of an event continue the trace of the request that caused it.

The tracer is this process's, set by `configure`; the OpenTelemetry global provider is left
alone, so a process (or a test run) can configure tracing more than once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, NoOpTracer, Span, SpanContext, SpanKind, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import event
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

from colonnade.kernel.events import Envelope
from colonnade.kernel.settings import Settings

SERVICE_NAME = "colonnade"
TRACES_PATH = "/v1/traces"
# Statement texts are parameterized (no values, so no personal data); this bounds their size.
_STATEMENT_LIMIT = 2_000
_STATEMENT_SPAN = "colonnade.statement_span"

__all__ = [
    "StatusCode",
    "Tracing",
    "configure",
    "consuming",
    "consuming_batch",
    "current_trace_id",
    "enabled",
    "following",
    "trace_id_of",
]

_propagator = TraceContextTextMapPropagator()
_nothing: AbstractContextManager[None] = nullcontext()


@dataclass(frozen=True)
class Tracing:
    """What `configure` set up: the provider and where its spans go."""

    provider: TracerProvider
    exporter: SpanExporter


class _Current:
    tracer: Tracer = NoOpTracer()
    tracing: Tracing | None = None


def traces_endpoint(base: str) -> str:
    """The OTLP/HTTP traces URL for a collector's base URL (as OTEL_EXPORTER_OTLP_ENDPOINT is)."""
    base = base.rstrip("/")
    return base if base.endswith(TRACES_PATH) else base + TRACES_PATH


def configure(settings: Settings, *, exporter: SpanExporter | None = None) -> Tracing | None:
    """Start tracing when an exporter is given or an OTLP endpoint is set; otherwise stop it.

    Replaces whatever an earlier call set up (its spans are flushed first).
    """
    shutdown()
    if exporter is None and settings.otlp_endpoint is None:
        return None
    if exporter is None:
        # Imported only when used: the exporter brings an HTTP client and protobuf along.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=traces_endpoint(str(settings.otlp_endpoint)))
    provider = TracerProvider(
        resource=Resource.create({"service.name": SERVICE_NAME}),
        sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _Current.tracing = Tracing(provider, exporter)
    _Current.tracer = provider.get_tracer(SERVICE_NAME)
    return _Current.tracing


def enabled() -> bool:
    return _Current.tracing is not None


def shutdown() -> None:
    """Export what is pending and go back to tracing nothing."""
    if _Current.tracing is not None:
        _Current.tracing.provider.shutdown()
    _Current.tracing = None
    _Current.tracer = NoOpTracer()


def span(name: str, attributes: Mapping[str, str] | None = None) -> AbstractContextManager[Any]:
    """A child span of the current one, current inside the block; nothing when tracing is off.

    An exception leaving the block marks the span failed and is recorded on it.
    """
    if _Current.tracing is None:
        return _nothing
    return _Current.tracer.start_as_current_span(name, attributes=attributes)


def serving(method: str, headers: Mapping[str, str]) -> AbstractContextManager[Span]:
    """The span of one HTTP request; a caller's `traceparent` header makes it their child."""
    return _Current.tracer.start_as_current_span(
        method,
        context=_propagator.extract(headers),
        kind=SpanKind.SERVER,
        attributes={"http.request.method": method},
    )


def current_trace_id() -> str | None:
    """The current trace's id as 32 hex digits, or None outside a recorded trace."""
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


# --- calls between module processes -------------------------------------------------------


@contextmanager
def calling(name: str, headers: dict[str, str]) -> Iterator[None]:
    """A call to a module in another process: a client span, its context written into the
    call's `headers` for the answering side to continue."""
    if _Current.tracing is None:
        yield
        return
    with _Current.tracer.start_as_current_span(name, kind=SpanKind.CLIENT):
        _propagator.inject(headers)
        yield


def answering(name: str, headers: Mapping[str, str]) -> AbstractContextManager[Any]:
    """A module answering another process's call, as a child of the caller's span."""
    if _Current.tracing is None:
        return _nothing
    return _Current.tracer.start_as_current_span(
        name, context=_propagator.extract(headers), kind=SpanKind.SERVER
    )


# --- events ------------------------------------------------------------------------------


def stamp(envelope: Envelope) -> None:
    """Mark an event's publication in the current trace and carry that trace in its headers."""
    if _Current.tracing is None:
        return
    with _Current.tracer.start_as_current_span(
        f"publish {envelope.event_type}",
        kind=SpanKind.PRODUCER,
        attributes=_messaging(envelope),
    ):
        _propagator.inject(envelope.headers)


def consuming(envelope: Envelope, consumer: str) -> AbstractContextManager[Any]:
    """A consumer's handling of an event, as a child of the span that published it."""
    if _Current.tracing is None:
        return _nothing
    return _Current.tracer.start_as_current_span(
        f"process {envelope.event_type}",
        context=_propagator.extract(envelope.headers),
        kind=SpanKind.CONSUMER,
        attributes={**_messaging(envelope), "messaging.consumer.group.name": consumer},
    )


def consuming_batch(envelopes: Sequence[Envelope], consumer: str) -> AbstractContextManager[Any]:
    """A consumer's handling of a batch of events of one type: a span of its own, linked to
    the span that published each event (a span has one parent, a batch many). Work done for
    one event inside it joins that event's trace through `following`."""
    if _Current.tracing is None:
        return _nothing
    first = envelopes[0]
    attributes: dict[str, str | int] = {
        "messaging.system": SERVICE_NAME,
        "messaging.destination.name": first.event_type,
        "messaging.batch.message_count": len(envelopes),
        "messaging.consumer.group.name": consumer,
    }
    return _Current.tracer.start_as_current_span(
        f"process {first.event_type}",
        context=Context(),  # a root: none of the events is its parent more than the others
        kind=SpanKind.CONSUMER,
        links=[Link(_published(envelope)) for envelope in envelopes],
        attributes=attributes,
    )


def following(
    envelope: Envelope, name: str, attributes: Mapping[str, str] | None = None
) -> AbstractContextManager[Any]:
    """A span for work done for one event, in that event's trace, wherever it runs (in a
    batch handler the current span is the batch's)."""
    if _Current.tracing is None:
        return _nothing
    return _Current.tracer.start_as_current_span(
        name, context=_propagator.extract(envelope.headers), attributes=attributes
    )


def trace_id_of(envelope: Envelope) -> str | None:
    """The trace an event was published in, as 32 hex digits, or None if it carries none."""
    context = _published(envelope)
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


def _published(envelope: Envelope) -> SpanContext:
    return trace.get_current_span(_propagator.extract(envelope.headers)).get_span_context()


def _messaging(envelope: Envelope) -> dict[str, str]:
    return {
        "messaging.system": SERVICE_NAME,
        "messaging.destination.name": envelope.event_type,
        "messaging.message.id": envelope.event_id,
    }


# --- database statements -----------------------------------------------------------------


def trace_statements(engine: AsyncEngine) -> None:
    """A client span per statement run inside a traced operation (a request, a consumer);
    statements of background loops outside any trace start none."""
    system = engine.dialect.name

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _started(
        conn: Connection,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        if not trace.get_current_span().is_recording():
            return
        conn.info[_STATEMENT_SPAN] = _Current.tracer.start_span(
            _operation(statement),
            kind=SpanKind.CLIENT,
            attributes={
                "db.system.name": system,
                "db.query.text": statement[:_STATEMENT_LIMIT],
            },
        )

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _finished(conn: Connection, *_: Any) -> None:
        statement_span = conn.info.pop(_STATEMENT_SPAN, None)
        if statement_span is not None:
            statement_span.end()

    @event.listens_for(engine.sync_engine, "handle_error")
    def _failed(context: ExceptionContext) -> None:
        if context.connection is None:
            return
        statement_span = context.connection.info.pop(_STATEMENT_SPAN, None)
        if statement_span is not None:
            statement_span.record_exception(context.original_exception)
            statement_span.set_status(StatusCode.ERROR)
            statement_span.end()


def _operation(statement: str) -> str:
    """SELECT, INSERT, BEGIN, ...: the statement's first word names its span."""
    words = statement.lstrip().split(None, 1)
    return words[0].upper() if words else "SQL"
