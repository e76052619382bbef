"""What reaches the log: rendered JSON lines without secrets, card numbers or e-mail addresses,
whatever the code that logs passes in."""

from __future__ import annotations

import io

import structlog

from colonnade.kernel.redaction import configure_logging
from tests.unit.conftest import rendered


def test_secrets_are_redacted_by_their_names(lines: io.StringIO) -> None:
    structlog.get_logger("test").info(
        "login",
        password="hunter2 hunter2",
        access_token="eyJhbGciOi.secret",
        refresh_token="r3fr3sh",
        headers={"Authorization": "Bearer eyJ", "Content-Type": "application/json"},
        api_key="ck_1_abcdef",
        new_password="another secret",
        client_secret="s3cr3t",
    )
    text = lines.getvalue()
    for secret in ("hunter2", "eyJ", "r3fr3sh", "ck_1_abcdef", "another secret", "s3cr3t"):
        assert secret not in text
    [line] = rendered(lines)
    assert line["password"] == "[redacted]"
    assert line["headers"] == {"Authorization": "[redacted]", "Content-Type": "application/json"}


def test_card_numbers_and_email_addresses_are_blotted_out_anywhere(lines: io.StringIO) -> None:
    log = structlog.get_logger("test")
    log.info(
        "checkout for ada@example.com with 4242 4242 4242 4242",
        address={"line2": "card 5555-5555-5555-4444 please", "phone": "+1 555 123 4567"},
        notes=["amex 378282246310005", 378282246310005],
        order_number=1234567890123,
    )
    try:
        raise ValueError("declined 4242424242424242 for grace@example.org")
    except ValueError:
        log.exception("payment.failed")
    text = lines.getvalue()
    for personal in ("4242", "5555-5555", "378282246310005", "ada@", "grace@"):
        assert personal not in text
    first, failure = rendered(lines)
    assert first["event"] == "checkout for [email] with [card number]"
    assert first["address"] == {"line2": "card [card number] please", "phone": "+1 555 123 4567"}
    assert first["notes"] == ["amex [card number]", "[card number]"]
    # Luhn-invalid numbers such as order numbers stay readable.
    assert first["order_number"] == 1234567890123
    assert "ValueError: declined [card number] for [email]" in failure["exception"]


def test_the_level_setting_filters_and_lines_are_json(lines: io.StringIO) -> None:
    configure_logging("WARNING", lines)
    log = structlog.get_logger("test")
    log.info("quiet")
    log.warning("loud", sku="MUG-RED")
    [line] = rendered(lines)
    assert (line["event"], line["level"], line["sku"]) == ("loud", "warning", "MUG-RED")
    assert line["timestamp"].endswith("Z")
