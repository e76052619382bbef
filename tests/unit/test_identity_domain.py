import pytest

from colonnade.kernel.errors import InvalidInput
from colonnade.modules.identity.domain import (
    STAFF_SCOPES,
    UnknownScope,
    WeakPassword,
    check_password,
    checked_scopes,
    normalized_email,
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
