"""What the logging set-up writes, caught as JSON lines for the tests that read logs."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from colonnade.kernel.redaction import configure_logging


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    output = io.StringIO()
    configure_logging("INFO", output)
    yield output
    structlog.reset_defaults()


def rendered(output: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.getvalue().splitlines()]
