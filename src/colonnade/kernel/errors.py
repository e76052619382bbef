"""Errors as types. Each carries what RFC 9457 problem details need; the web layer renders them."""

from __future__ import annotations

from typing import Any, ClassVar


class ColonnadeError(Exception):
    """A failure a client can act on. `code` is stable and machine-readable."""

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad request"
    code: ClassVar[str] = "bad_request"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    def problem(self) -> dict[str, Any]:
        return {
            "type": f"https://colonnade.dev/problems/{self.code.replace('_', '-')}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            **self.extensions,
        }


class InvalidInput(ColonnadeError):
    status = 422
    title = "Invalid input"
    code = "invalid_input"


class NotFound(ColonnadeError):
    status = 404
    title = "Not found"
    code = "not_found"


class Conflict(ColonnadeError):
    status = 409
    title = "Conflict"
    code = "conflict"


class Unauthorized(ColonnadeError):
    status = 401
    title = "Unauthorized"
    code = "unauthorized"


class Forbidden(ColonnadeError):
    status = 403
    title = "Forbidden"
    code = "forbidden"


class UnknownCurrency(InvalidInput):
    code = "unknown_currency"

    def __init__(self, currency: str) -> None:
        super().__init__(f"'{currency}' is not an ISO 4217 currency code", currency=currency)


class CurrencyMismatch(InvalidInput):
    code = "currency_mismatch"

    def __init__(self, left: str, right: str) -> None:
        super().__init__(f"cannot combine amounts in {left} and {right}", currencies=[left, right])


class DuplicateCurrency(InvalidInput):
    code = "duplicate_currency"

    def __init__(self, sku: str, currency: str) -> None:
        super().__init__(
            f"SKU '{sku}' can have one price per currency; {currency} is given more than once",
            sku=sku,
            currency=currency,
        )
