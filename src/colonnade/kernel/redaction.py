"""Logs never carry secrets, card numbers or e-mail addresses, whoever writes the log line.

`configure_logging` is called once when the app or the command starts: every structlog event
then passes `redact` just before it is rendered as one JSON line.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from typing import Any, TextIO

import orjson
import structlog
from structlog.typing import EventDict, WrappedLogger

from colonnade.kernel.cards import MIN_DIGITS, blot_card_numbers
from colonnade.kernel.log_context import add_trace_ids

REDACTED = "[redacted]"
_SHORTEST_CARD = 10 ** (MIN_DIGITS - 1)  # the smallest number with as many digits as a card
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_SECRET_KEYS = frozenset(
    {
        "password",
        "passwd",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "secret",
        "client_secret",
        "secret_key",
        "encryption_key",
        "master_key",
        "private_key",
        "authorization",
        "cookie",
        "set_cookie",
        "api_key",
        "apikey",
        "x_api_key",
    }
)
# Names such as new_password, stripe_api_key or session_token.
_SECRET_SUFFIXES = ("_password", "_token", "_secret", "_api_key")


# Keys repeat (every log line has the same few names); the bound keeps odd ones from piling up.
@functools.lru_cache(maxsize=4096)
def is_secret_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    name = key.lower().replace("-", "_")
    return name in _SECRET_KEYS or name.endswith(_SECRET_SUFFIXES)


def redact_value(value: Any) -> Any:
    """`value` with card numbers and e-mail addresses blotted out, at any depth."""
    if isinstance(value, str):
        # Most logged values are short words and ids: skip the scans that cannot match.
        if len(value) >= MIN_DIGITS:
            value = blot_card_numbers(value)
        return _EMAIL.sub("[email]", value) if "@" in value else value
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        if -_SHORTEST_CARD < value < _SHORTEST_CARD:
            return value
        text = str(value)
        return value if blot_card_numbers(text) == text else "[card number]"
    if isinstance(value, Mapping):
        return {
            key: REDACTED if is_secret_key(key) else redact_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    return redact_value(str(value))


def redact(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """A structlog processor: the last one before rendering, so it sees the final text."""
    return {
        key: REDACTED if is_secret_key(key) else redact_value(value) for key, value in event.items()
    }


def _json_line(event: EventDict, **options: Any) -> str:
    """One log line as JSON, by orjson: every request writes one, so it is worth the speed."""
    return orjson.dumps(event, option=orjson.OPT_NON_STR_KEYS, **options).decode()


def configure_logging(level: str = "INFO", output: TextIO | None = None) -> None:
    """One JSON object per line on `output` (standard output when None)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.format_exc_info,
            redact,
            # After redaction: the level, the time and the trace ids are ours and carry
            # nothing to hide.
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            add_trace_ids,
            structlog.processors.JSONRenderer(_json_line),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(output),
        cache_logger_on_first_use=False,
    )
