"""The batched card checkout's answers in PostgreSQL's SQL, run straight on the driver
(`UnitOfWork.fetch`): a batch's rows travel as arrays, one fixed statement text whatever
the batch's size. SQLite runs the same step through SQLAlchemy."""

from __future__ import annotations

# Each checkout row is this batch's own (claimed by it): no other batch waits on them.
STORE_ANSWERS = (
    "UPDATE checkout_checkouts AS c SET step = a.step, response_status = a.status,"
    " response_body = a.body::json, error = a.error, reservation_id = a.reservation_id,"
    " payment_id = a.payment_id, order_id = a.order_id, updated_at = $9"
    " FROM unnest($1::varchar[], $2::varchar[], $3::int[], $4::text[], $5::text[],"
    " $6::varchar[], $7::varchar[], $8::varchar[])"
    " AS a(id, step, status, body, error, reservation_id, payment_id, order_id)"
    " WHERE c.id = a.id"
)
