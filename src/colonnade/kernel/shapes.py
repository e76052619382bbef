"""Shapes of text that the domain checks and the API document declares, written once."""

from __future__ import annotations

LOCALE_TAG = r"[A-Za-z0-9]{1,8}(?:-[A-Za-z0-9]{1,8}){0,3}"
"""A BCP 47 tag's shape (en-US, ja, de-AT); whether Babel knows the tag is a further check."""

PROMOTION_CODE = r"[A-Za-z0-9][A-Za-z0-9_-]{2,39}"
"""A discount code as shoppers type it: 3 to 40 letters, digits, '-' or '_' (any case)."""

IDEMPOTENCY_KEY = r"[A-Za-z0-9_\-:.]{8,200}"
"""An Idempotency-Key: 8 to 200 letters, digits, '-', '_', ':' or '.'."""
