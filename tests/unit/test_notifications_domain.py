"""The words of an order confirmation: amounts in the currency's own minor units."""

from __future__ import annotations

from colonnade.kernel.money import Money
from colonnade.modules.notifications.domain import BoughtLine, PaidOrder, order_confirmation


def test_a_confirmation_lists_the_lines_and_the_total_in_the_orders_currency() -> None:
    order = PaidOrder(
        number="C-7Q2K",
        lines=[
            BoughtLine("Kenya AA", 2, Money(3000, "JPY")),
            BoughtLine("Filter", 1, Money(500, "JPY")),
        ],
        total=Money(3850, "JPY"),
    )

    mail = order_confirmation("buyer@example.com", order)

    assert mail.to == "buyer@example.com"
    assert mail.subject == "Your order C-7Q2K is confirmed"
    assert "  2 x Kenya AA: 3000 JPY\n  1 x Filter: 500 JPY\n" in mail.body
    assert mail.body.endswith("Total paid: 3850 JPY\n")


def test_minor_units_are_shown_as_the_currencys_decimals() -> None:
    order = PaidOrder("C-1", [BoughtLine("Tea", 1, Money(1250, "USD"))], Money(1375, "USD"))

    assert "Total paid: 13.75 USD" in order_confirmation("a@example.com", order).body
