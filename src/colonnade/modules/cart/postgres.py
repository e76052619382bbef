"""The batched cart changes' statements in PostgreSQL's SQL, run straight on the driver
(`UnitOfWork.fetch`): a batch's rows travel as arrays, one fixed statement text per step,
prepared once per connection. SQLite runs the same steps through SQLAlchemy."""

from __future__ import annotations

# Each open, live cart's version goes up by its changes in the batch; its row is locked.
CLAIM = (
    "UPDATE cart_carts AS c SET version = c.version + b.changes, updated_at = $3"
    " FROM unnest($1::varchar[], $2::int[]) AS b(id, changes)"
    " WHERE c.id = b.id AND c.status = $4 AND c.updated_at >= $5"
    " RETURNING c.id, c.market, c.currency, c.tax_inclusive, c.version, c.customer_id,"
    " c.promotion_code"
)
# Carts with their lines, as reads of them (snapshots, changes) need them.
LOAD = (
    "SELECT c.id, c.market, c.currency, c.tax_inclusive, c.status, c.updated_at, c.version,"
    " c.customer_id, c.promotion_code, l.sku, l.quantity FROM cart_carts AS c"
    " LEFT JOIN cart_lines AS l ON l.cart_id = c.id"
    " WHERE c.id = ANY($1::varchar[]) ORDER BY c.id, l.position"
)
LINES_OF = (
    "SELECT cart_id, sku, quantity FROM cart_lines WHERE cart_id = ANY($1::varchar[])"
    " ORDER BY cart_id, position"
)
# A line keeps when it was first added, so it keeps its place in the cart.
WRITE_LINES = (
    "INSERT INTO cart_lines (cart_id, sku, quantity, added_at, position)"
    " SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::int[], $4::timestamptz[],"
    " $5::int[])"
    " ON CONFLICT (cart_id, sku) DO UPDATE SET quantity = EXCLUDED.quantity"
)
DROP_LINES = (
    "DELETE FROM cart_lines AS l USING unnest($1::varchar[], $2::varchar[]) AS d(cart_id, sku)"
    " WHERE l.cart_id = d.cart_id AND l.sku = d.sku"
)
CLOSE = (
    "UPDATE cart_carts SET status = $2, version = version + 1, updated_at = $3"
    " WHERE id = ANY($1::varchar[]) AND status <> $2"
)
