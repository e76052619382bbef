from datetime import UTC, datetime, timedelta

import pytest

from colonnade.kernel.errors import InvalidInput
from colonnade.modules.identity.domain import (
    ROLES,
    STAFF_SCOPES,
    LockoutPolicy,
    LoginThrottle,
    ScopeNotHeld,
    UnknownRole,
    UnknownScope,
    WeakPassword,
    check_password,
    checked_scopes,
    grantable,
    normalized_email,
    scopes_of_roles,
)


def test_email_addresses_are_compared_in_lower_case_without_spaces() -> None:
    assert normalized_email("  Ada@Example.COM ") == "ada@example.com"


@pytest.mark.parametrize("email", ["", "ada", "ada@", "@example.com", "a b@example.com", "a@b"])
def test_something_that_is_no_email_address_is_refused(email: str) -> None:
    with pytest.raises(InvalidInput):
        normalized_email(email)


def test_a_short_password_is_refused() -> None:
    with pytest.raises(WeakPassword):
        check_password("short")
    check_password("long enough password")


def test_an_admin_gets_every_scope_and_unknown_scopes_are_named() -> None:
    assert checked_scopes(None) == STAFF_SCOPES
    with pytest.raises(UnknownScope) as caught:
        checked_scopes(frozenset({"catalog:write", "root"}))
    assert "root" in caught.value.detail


def test_roles_grant_known_scopes_and_admin_grants_them_all() -> None:
    assert ROLES["admin"] == STAFF_SCOPES
    for scopes in ROLES.values():
        assert scopes <= STAFF_SCOPES
    assert scopes_of_roles(["warehouse", "support"]) == ROLES["warehouse"] | ROLES["support"]
    assert {"customers:read", "compliance:admin", "audit:read", "apikeys:write"} <= STAFF_SCOPES
    with pytest.raises(UnknownRole) as caught:
        scopes_of_roles(["warehouse", "janitor"])
    assert caught.value.extensions["roles"] == ["janitor"]


def test_nobody_grants_a_scope_they_do_not_hold() -> None:
    held = frozenset({"orders:read", "apikeys:write"})
    assert grantable(frozenset({"orders:read"}), held) == {"orders:read"}
    with pytest.raises(ScopeNotHeld) as caught:
        grantable(frozenset({"orders:read", "orders:refund"}), held)
    assert caught.value.extensions["scopes"] == ["orders:refund"]
    with pytest.raises(UnknownScope):
        grantable(frozenset({"customer"}), held | {"customer"})


POLICY = LockoutPolicy(
    threshold=3,
    window=timedelta(minutes=15),
    first_lock=timedelta(seconds=30),
    longest_lock=timedelta(minutes=2),
)
NOON = datetime(2025, 11, 28, 12, 0, tzinfo=UTC)


def test_failures_below_the_threshold_do_not_lock_and_a_quiet_window_forgives() -> None:
    state = LoginThrottle().failed(NOON, POLICY).failed(NOON, POLICY)
    assert (state.failures, state.retry_after(NOON)) == (2, 0)
    later = NOON + POLICY.window
    assert state.failed(later, POLICY).failures == 1


def test_each_failure_past_the_threshold_locks_twice_as_long_up_to_the_cap() -> None:
    state, now, waits = LoginThrottle(), NOON, []
    for _ in range(POLICY.threshold - 1):
        state = state.failed(now, POLICY)
    for _ in range(4):
        state = state.failed(now, POLICY)
        waits.append(state.retry_after(now))
        assert state.locked_until is not None
        now = state.locked_until
        assert state.retry_after(now) == 0
    assert waits == [30, 60, 120, 120]


def test_retry_after_rounds_up_to_whole_seconds() -> None:
    state = LoginThrottle(3, NOON, NOON + timedelta(seconds=30))
    assert state.retry_after(NOON + timedelta(seconds=29, milliseconds=1)) == 1
    assert state.retry_after(NOON + timedelta(seconds=30)) == 0
