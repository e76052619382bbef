"""Money as every route shows it: {"amount": minor units, "currency": ISO 4217 code}."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from colonnade.kernel.money import Money
from colonnade.web.fields import MAX_WHOLE_NUMBER, CurrencyCode, WholeNumber


class MoneyOut(BaseModel):
    amount: int = Field(description="Whole minor units (cents for USD, yen for JPY).")
    currency: str = Field(description="ISO 4217 code, such as USD.")

    @classmethod
    def of(cls, money: Money) -> MoneyOut:
        return cls(amount=money.amount, currency=money.currency)


class MoneyIn(BaseModel):
    """An amount a client asks the shop to move (a refund, a transfer received, a gift card)."""

    model_config = ConfigDict(extra="forbid")

    # A longer number may be a card number, which the shop refuses wherever it is.
    amount: WholeNumber = Field(gt=0, le=MAX_WHOLE_NUMBER, description="Whole minor units.")
    currency: CurrencyCode = Field(description="ISO 4217 code, such as USD.")

    def money(self) -> Money:
        return Money(self.amount, self.currency)
