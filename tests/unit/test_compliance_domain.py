"""The audit log's rules: what it records, what it hides, how a broken chain is named."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from colonnade.modules.compliance.domain import (
    GENESIS_HASH,
    REMOVED,
    START,
    ChainedFields,
    ChainLink,
    break_at_end,
    break_in_link,
    payload_digest,
    should_record,
    without_secrets,
)

AT = datetime(2025, 11, 28, 9, 0, tzinfo=UTC)


def row(seq: int, prev_hash: str, status: int = 201) -> ChainedFields:
    return ChainedFields(
        seq=seq,
        at=AT,
        actor_kind="staff",
        actor_id="staff-1",
        client_address="10.0.0.1",
        action="POST /admin/products",
        target="{}",
        status=status,
        payload_digest=payload_digest(b"salt", {"before": None, "after": {"sku": "MUG"}}),
        prev_hash=prev_hash,
    )


def chain(length: int) -> list[ChainedFields]:
    rows: list[ChainedFields] = []
    previous = GENESIS_HASH
    for seq in range(1, length + 1):
        rows.append(row(seq, previous))
        previous = rows[-1].row_hash()
    return rows


def test_passwords_tokens_secrets_and_keys_are_blanked_at_any_depth() -> None:
    body = {
        "email": "ada@example.com",
        "password": "hunter2",
        "refresh_token": "r",
        "payment": {"method": "card", "token": "tok_visa"},
        "webhooks": [{"url": "https://x", "signing_secret": "s"}],
        "api_key": "ck_1",
        "new_password": "p",
    }

    assert without_secrets(body) == {
        "email": "ada@example.com",
        "password": REMOVED,
        "refresh_token": REMOVED,
        "payment": {"method": "card", "token": REMOVED},
        "webhooks": [{"url": "https://x", "signing_secret": REMOVED}],
        "api_key": REMOVED,
        "new_password": REMOVED,
    }


@pytest.mark.parametrize(
    ("method", "action", "kind", "recorded"),
    [
        ("POST", "POST /admin/products", "staff", True),
        ("DELETE", "DELETE /admin/api-keys/{key_id}", "api_key", True),
        ("GET", "GET /admin/orders", "staff", False),
        ("GET", "GET /admin/customers/{customer_id}", "staff", True),
        ("POST", "POST /store/carts", "customer", False),
        ("GET", "GET /store/customers/me/export", "customer", True),
        ("DELETE", "DELETE /store/customers/me", "customer", True),
    ],
)
def test_what_is_recorded(method: str, action: str, kind: str, recorded: bool) -> None:
    assert should_record(method, action, kind) is recorded


def test_the_payload_digest_depends_on_the_salt_and_not_on_key_order() -> None:
    payload = {"before": None, "after": {"a": 1, "b": 2}}
    reordered = {"after": {"b": 2, "a": 1}, "before": None}

    assert payload_digest(b"one", payload) == payload_digest(b"one", reordered)
    assert payload_digest(b"one", payload) != payload_digest(b"two", payload)


def test_an_unbroken_chain_has_no_break() -> None:
    rows = chain(3)
    last = START
    for fields in rows:
        assert break_in_link(last, fields, fields.row_hash()) is None
        last = ChainLink(fields.seq, fields.row_hash())
    assert break_at_end(last, last) is None


def test_a_changed_field_a_gap_and_a_lost_tail_are_named() -> None:
    first, second, third = chain(3)
    link = ChainLink(1, first.row_hash())

    assert break_in_link(link, replace(second, status=500), second.row_hash()) == (
        "row 2 was changed"
    )
    assert break_in_link(link, third, third.row_hash()) == "row 2 is missing"
    assert break_at_end(link, ChainLink(3, third.row_hash())) == (
        "rows 2 to 3 are missing (the log ended at row 3)"
    )
    assert break_at_end(START, None) is None
    assert break_at_end(link, None) == "the head of the audit log is missing"
