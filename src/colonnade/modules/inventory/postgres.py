"""The batched purchase's inventory statements in PostgreSQL's own SQL, run straight on the
driver (`UnitOfWork.fetch`, `execute_many`), each with one fixed text prepared once per
connection. Its inserts are `kernel.bulk.insert_rows`'. SQLite runs the same steps through
SQLAlchemy (service.py)."""

from __future__ import annotations

AVAILABLE = (
    "SELECT sku, warehouse, on_hand - reserved - sold AS available FROM inventory_stock"
    " WHERE sku = ANY($1::varchar[]) ORDER BY sku, warehouse"
)
# Locked in (sku, warehouse) order, the order every batch locks them in: no deadlocks.
AVAILABLE_LOCKED = AVAILABLE + " FOR UPDATE"

# One row per statement, sent together in (sku, warehouse) order: rows locked in key order.
TAKE_UNITS = "UPDATE inventory_stock SET reserved = reserved + $3 WHERE sku = $1 AND warehouse = $2"
MOVE_UNITS = (
    "UPDATE inventory_stock SET reserved = reserved - $3, sold = sold + $4"
    " WHERE sku = $1 AND warehouse = $2"
)
MOVE_HELD = (
    "UPDATE inventory_reservations SET status = $2"
    " WHERE id = ANY($1::varchar[]) AND status = 'held' RETURNING id"
)
