"""Load rehearsals of a running shop (`colonnade rehearse`) and the capacity plan drawn from
them (`colonnade capacity`).

A rehearsal is a visitor from outside: it reaches the shop only over HTTP (the storefront,
the admin API with a staff login, the metrics port) and, for the one fault that cuts database
connections, PostgreSQL itself. It imports no module of the shop; import-linter holds it to
that. Its pure parts (profile, target, findings, capacity) import no framework either.
"""
