"""The batched card purchase's payment statements in PostgreSQL's SQL, run straight on the
driver (`UnitOfWork.fetch`): a batch's rows travel as arrays, one fixed statement text per
step, prepared once per connection. SQLite runs the same steps through SQLAlchemy."""

from __future__ import annotations

STILL_AUTHORIZING = (
    "SELECT id FROM payments_payments WHERE id = ANY($1::varchar[]) AND status = $2"
    " ORDER BY id FOR UPDATE"
)
