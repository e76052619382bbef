"""The batched card purchase's payment statements in PostgreSQL's SQL, run straight on the
driver (`UnitOfWork.fetch`): a batch's rows travel as arrays, one fixed statement text per
step, prepared once per connection. SQLite runs the same steps through SQLAlchemy."""

from __future__ import annotations

STILL_AUTHORIZING = (
    "SELECT id FROM payments_payments WHERE id = ANY($1::varchar[]) AND status = $2"
    " ORDER BY id FOR UPDATE"
)
RECORD_CHARGES = (
    "UPDATE payments_payments AS p SET status = c.status, authorized_amount = c.amount,"
    " captured_amount = c.amount, provider_reference = c.reference,"
    " decline_reason = c.reason, order_id = c.order_id, updated_at = $7"
    " FROM unnest($1::varchar[], $2::varchar[], $3::bigint[], $4::varchar[], $5::varchar[],"
    " $6::varchar[]) AS c(id, status, amount, reference, reason, order_id)"
    " WHERE p.id = c.id"
)
