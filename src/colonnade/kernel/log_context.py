"""Where a log line came from: the trace and span that were current when it was written.

The request id comes from structlog's context variables (bound for each request); the trace
ids are read from OpenTelemetry here, so a log line can be found from a trace and back.
"""

from __future__ import annotations

from opentelemetry import trace
from structlog.typing import EventDict, WrappedLogger


def add_trace_ids(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """A structlog processor: `trace_id` and `span_id` (hex, as tracing back ends show them)
    when a span is current; nothing otherwise."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event["trace_id"] = format(context.trace_id, "032x")
        event["span_id"] = format(context.span_id, "016x")
    return event
