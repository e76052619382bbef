"""Compliance rules: what the audit log keeps, how its rows are chained, what a record hides.

Each audit row carries the hash of the row before it, so changing, removing or reordering a
row breaks every hash after it. The before/after payloads are not hashed directly but through
a digest salted per row: erasure clears the payload and its salt, the digest stays, and the
chain still verifies without anything that could be guessed back from the digest.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from colonnade.kernel.errors import NotFound

# The previous hash of the first row: any fixed value does, as long as it never changes.
GENESIS_HASH = "0" * 64

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Requests about a customer's personal data rights, recorded whoever makes them.
PERSONAL_DATA_ACTIONS = frozenset(
    {
        "GET /store/customers/me/export",
        "DELETE /store/customers/me",
        "GET /admin/customers/{customer_id}/export",
        "DELETE /admin/customers/{customer_id}",
        # The same, asked for on the storefront's account pages.
        "GET /{prefix:shop}/account/export",
        "POST /{prefix:shop}/account/erase",
    }
)

CUSTOMER_DATA_PREFIX = "/admin/customers/"

REMOVED = "[removed]"
_SECRET_NAMES = frozenset({"password", "token", "secret", "key", "api_key", "apikey"})
_SECRET_PARTS = ("password", "secret", "token", "api_key", "apikey")


class CustomerNotFound(NotFound):
    code = "customer_not_found"

    def __init__(self) -> None:
        super().__init__("no such customer")


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, so a hash over it is reproducible."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def is_secret_field(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_NAMES or any(part in lowered for part in _SECRET_PARTS)


def without_secrets(value: Any) -> Any:
    """The value with every field that names a password, token, secret or key blanked out."""
    if isinstance(value, Mapping):
        return {
            str(k): REMOVED if is_secret_field(str(k)) else without_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [without_secrets(v) for v in value]
    return value


def should_record(method: str, action: str, actor_kind: str) -> bool:
    """Which requests the audit log keeps: staff and integration changes, their reads of
    customer data, and every personal-data request whoever makes it."""
    if action in PERSONAL_DATA_ACTIONS:
        return True
    if actor_kind not in ("staff", "api_key"):
        return False
    if method in STATE_CHANGING:
        return True
    route = action.split(" ", 1)[1] if " " in action else action
    return method == "GET" and route.startswith(CUSTOMER_DATA_PREFIX)


def payload_digest(salt: bytes, payload: Mapping[str, Any]) -> str:
    return hashlib.sha256(salt + canonical_json(payload).encode()).hexdigest()


@dataclass(frozen=True)
class ChainedFields:
    """What a row hash covers, in the form it is stored."""

    seq: int
    at: datetime
    actor_kind: str
    actor_id: str | None
    client_address: str | None
    action: str
    target: str
    status: int
    payload_digest: str
    prev_hash: str

    def row_hash(self) -> str:
        fields = [
            self.seq,
            self.at.astimezone(UTC).isoformat(),
            self.actor_kind,
            self.actor_id,
            self.client_address,
            self.action,
            self.target,
            self.status,
            self.payload_digest,
            self.prev_hash,
        ]
        return hashlib.sha256(canonical_json(fields).encode()).hexdigest()


@dataclass(frozen=True)
class ChainLink:
    """Where the chain stands: the last sequence number and the hash the next row must carry."""

    seq: int
    row_hash: str


START = ChainLink(0, GENESIS_HASH)


def break_in_link(previous: ChainLink, row: ChainedFields, stored_hash: str) -> str | None:
    """Why `row` does not follow `previous` (None when it does)."""
    if row.seq != previous.seq + 1:
        missing = (
            f"row {previous.seq + 1} is missing"
            if row.seq == previous.seq + 2
            else f"rows {previous.seq + 1} to {row.seq - 1} are missing"
        )
        return missing if row.seq > previous.seq else f"row {row.seq} is out of order"
    if row.row_hash() != stored_hash:
        return f"row {row.seq} was changed"
    if row.prev_hash != previous.row_hash:
        return f"row {row.seq} does not follow row {previous.seq}"
    return None


def break_at_end(last: ChainLink, head: ChainLink | None) -> str | None:
    """Whether the chain ends where the head says the last append left it."""
    if head is None:
        return None if last.seq == 0 else "the head of the audit log is missing"
    if head.seq > last.seq:
        first = last.seq + 1
        return (
            f"row {first} is missing (the log ended at row {head.seq})"
            if first == head.seq
            else f"rows {first} to {head.seq} are missing (the log ended at row {head.seq})"
        )
    if head.seq < last.seq:
        return f"row {head.seq + 1} was added behind the log's back"
    if head.row_hash != last.row_hash:
        return f"row {last.seq} was changed"
    return None
