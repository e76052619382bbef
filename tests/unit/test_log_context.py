"""A log line written while a trace span is current names that trace and span, so an operator
can go from a log line to its trace and back; outside a span it names none."""

from __future__ import annotations

import io

import structlog
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from tests.unit.conftest import rendered

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7


def test_a_line_inside_a_span_names_its_trace_and_span(lines: io.StringIO) -> None:
    span = NonRecordingSpan(
        SpanContext(TRACE_ID, SPAN_ID, is_remote=False, trace_flags=TraceFlags(1))
    )
    with trace.use_span(span):
        structlog.get_logger("test").info("inside")
    structlog.get_logger("test").info("outside")

    inside, outside = rendered(lines)
    assert inside["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert inside["span_id"] == "00f067aa0ba902b7"
    assert "trace_id" not in outside
    assert "span_id" not in outside
