"""The shop's modules. Each owns its tables, events and rules; they meet only in colonnade.app."""

# Order does not matter to migrations: each module's tables stand alone.
MODULES: tuple[str, ...] = (
    "identity",
    "catalog",
    "pricing",
    "promotions",
    "inventory",
    "cart",
    "payments",
    "orders",
    "checkout",
    "compliance",
    "notifications",
    "analytics",
)
