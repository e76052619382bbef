"""Identity rules: who may do what, what accounts must look like, when a login is throttled."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from colonnade.kernel.errors import (
    ColonnadeError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
)

# Every scope a staff member can hold; an admin holds them all.
STAFF_SCOPES: frozenset[str] = frozenset(
    {
        "catalog:write",
        "pricing:read",
        "pricing:write",
        "promotions:read",
        "promotions:write",
        "inventory:read",
        "inventory:write",
        "orders:read",
        "orders:write",
        "orders:refund",
        "payments:write",
        "staff:write",
        "customers:read",
        "compliance:admin",
        "audit:read",
        "apikeys:write",
        "ops:read",
        "insights:read",
    }
)

# A customer acts only on their own account, carts and orders: one scope says so.
CUSTOMER_SCOPES: frozenset[str] = frozenset({"customer"})

# What each staff role may do. A staff member holds the union of their roles' scopes.
ROLES: dict[str, frozenset[str]] = {
    "admin": STAFF_SCOPES,
    "catalog_manager": frozenset(
        {
            "catalog:write",
            "pricing:read",
            "pricing:write",
            "promotions:read",
            "promotions:write",
            "inventory:read",
        }
    ),
    "warehouse": frozenset({"inventory:read", "inventory:write", "orders:read"}),
    "support": frozenset({"orders:read", "orders:write", "customers:read"}),
    "finance": frozenset(
        {
            "orders:read",
            "orders:refund",
            "payments:write",
            "pricing:read",
            "promotions:read",
            "insights:read",
        }
    ),
    "compliance_officer": frozenset({"customers:read", "compliance:admin", "audit:read"}),
    # Watches the shop (the operations page) and changes nothing.
    "operator": frozenset({"ops:read"}),
}

# What a customer can say yes or no to; each change is kept with when and from where.
CONSENT_PURPOSES: frozenset[str] = frozenset({"marketing_email"})

MIN_PASSWORD_LENGTH = 12
MAX_NAME_LENGTH = 200
# Control characters are no part of an address (and PostgreSQL text cannot hold NUL).
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"

    def __init__(self) -> None:
        # One message for unknown e-mail and wrong password: it reveals no accounts.
        super().__init__("the e-mail address or the password is wrong")


class InvalidToken(Unauthorized):
    code = "invalid_token"


class InvalidRefreshToken(Unauthorized):
    code = "invalid_refresh_token"

    def __init__(self) -> None:
        super().__init__("the refresh token is not valid any more; log in again")


class LoginLocked(ColonnadeError):
    status = 429
    title = "Too many failed logins"
    code = "login_locked"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed logins for this e-mail address; try again in {retry_after} s",
            retry_after=retry_after,
        )
        self.retry_after = retry_after


class WrongPassword(Forbidden):
    code = "wrong_password"

    def __init__(self) -> None:
        super().__init__("the current password is wrong")


class StaffExists(Conflict):
    code = "staff_exists"

    def __init__(self, email: str) -> None:
        super().__init__(f"a staff account for {email} exists already")


class WeakPassword(InvalidInput):
    code = "weak_password"


class UnknownScope(InvalidInput):
    code = "unknown_scope"


class UnknownRole(InvalidInput):
    code = "unknown_role"


class ScopeNotHeld(Forbidden):
    code = "scope_not_held"

    def __init__(self, scopes: list[str]) -> None:
        super().__init__(
            f"you cannot grant scopes you do not hold: {', '.join(scopes)}", scopes=scopes
        )


class CustomerNotFound(NotFound):
    code = "customer_not_found"

    def __init__(self) -> None:
        super().__init__("no such customer")


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no API key {key_id}", api_key_id=key_id)


class UnknownConsent(NotFound):
    code = "unknown_consent"

    def __init__(self, purpose: str) -> None:
        super().__init__(
            f"there is no consent '{purpose}'; known: {', '.join(sorted(CONSENT_PURPOSES))}",
            purpose=purpose,
        )


@dataclass(frozen=True)
class StaffMember:
    id: str
    email: str
    name: str
    scopes: frozenset[str]
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Customer:
    id: str
    email: str
    name: str


def normalized_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email):
        raise InvalidInput(f"'{email}' is not an e-mail address", field="email")
    return email


def checked_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or _CONTROL.search(name):
        raise InvalidInput(
            f"a name has 1 to {MAX_NAME_LENGTH} characters and no control characters",
            field="name",
        )
    return name


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")


def checked_scopes(scopes: frozenset[str] | None) -> frozenset[str]:
    if scopes is None:
        return STAFF_SCOPES
    unknown = sorted(scopes - STAFF_SCOPES)
    if unknown:
        raise UnknownScope(f"unknown scopes: {', '.join(unknown)}", scopes=unknown)
    return scopes


def scopes_of_roles(roles: Iterable[str]) -> frozenset[str]:
    roles = list(roles)
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise UnknownRole(
            f"unknown roles: {', '.join(unknown)}; known: {', '.join(sorted(ROLES))}",
            roles=unknown,
        )
    return frozenset().union(*(ROLES[role] for role in roles))


def grantable(wanted: frozenset[str], held: frozenset[str]) -> frozenset[str]:
    """Scopes one principal hands to another: known ones, and only ones it holds itself."""
    checked_scopes(wanted)
    missing = sorted(wanted - held)
    if missing:
        raise ScopeNotHeld(missing)
    return wanted


def check_consent_purpose(purpose: str) -> None:
    if purpose not in CONSENT_PURPOSES:
        raise UnknownConsent(purpose)


@dataclass(frozen=True)
class LockoutPolicy:
    """After `threshold` failures close together, each further failure locks the e-mail for
    twice as long as the one before (from `first_lock`, at most `longest_lock`). A quiet
    `window` after the last failure or lock forgives the count."""

    threshold: int = 5
    window: timedelta = timedelta(minutes=15)
    first_lock: timedelta = timedelta(seconds=30)
    longest_lock: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class LoginThrottle:
    """Failed logins for one e-mail address (known to the shop or not)."""

    failures: int = 0
    last_failure_at: datetime | None = None
    locked_until: datetime | None = None

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until a login may be tried again; 0 when it may be tried now."""
        if self.locked_until is None or now >= self.locked_until:
            return 0
        return max(1, math.ceil((self.locked_until - now).total_seconds()))

    def failed(self, now: datetime, policy: LockoutPolicy) -> LoginThrottle:
        last = max(
            (t for t in (self.last_failure_at, self.locked_until) if t is not None), default=None
        )
        failures = 1 if last is None or now - last >= policy.window else self.failures + 1
        locked_until = None
        if failures >= policy.threshold:
            doublings = min(failures - policy.threshold, 32)
            locked_until = now + min(policy.first_lock * 2**doublings, policy.longest_lock)
        return LoginThrottle(failures=failures, last_failure_at=now, locked_until=locked_until)
