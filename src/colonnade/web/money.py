"""Money as every route shows it: {"amount": minor units, "currency": ISO 4217 code}."""

from __future__ import annotations

from pydantic import BaseModel, Field

from colonnade.kernel.money import Money


class MoneyOut(BaseModel):
    amount: int = Field(description="Whole minor units (cents for USD, yen for JPY).")
    currency: str = Field(description="ISO 4217 code, such as USD.")

    @classmethod
    def of(cls, money: Money) -> MoneyOut:
        return cls(amount=money.amount, currency=money.currency)
