"""Who is acting: a staff member, a customer or an integration, and what it may do."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    subject: str
    kind: str
    scopes: frozenset[str] = field(default_factory=frozenset)
