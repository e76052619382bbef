"""The batched purchase's inventory statements in PostgreSQL's own SQL, run straight on the
driver (`UnitOfWork.fetch`, `execute_many`): a batch's rows travel as arrays, so one
statement serves the whole batch with one fixed text, prepared once per connection.
SQLite runs the same steps through SQLAlchemy (service.py)."""

from __future__ import annotations

AVAILABLE = (
    "SELECT sku, warehouse, on_hand - reserved - sold AS available FROM inventory_stock"
    " WHERE sku = ANY($1::varchar[]) ORDER BY sku, warehouse"
)
# Locked in (sku, warehouse) order, the order every batch locks them in: no deadlocks.
AVAILABLE_LOCKED = AVAILABLE + " FOR UPDATE"

INSERT_RESERVATIONS = (
    "INSERT INTO inventory_reservations (id, reference, status, expires_at, created_at)"
    " SELECT id, reference, $3, $4, $5 FROM unnest($1::varchar[], $2::varchar[])"
    " AS r(id, reference)"
)
INSERT_RESERVATION_LINES = (
    "INSERT INTO inventory_reservation_lines (reservation_id, sku, warehouse, quantity)"
    " SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], $4::int[])"
)
INSERT_LEDGER = (
    "INSERT INTO inventory_ledger (sku, warehouse, reason, delta_on_hand, delta_reserved,"
    " delta_sold, reference, at)"
    " SELECT sku, warehouse, $3, 0, reserved, sold, reference, $7"
    " FROM unnest($1::varchar[], $2::varchar[], $4::int[], $5::int[], $6::varchar[])"
    " AS l(sku, warehouse, reserved, sold, reference)"
)
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
