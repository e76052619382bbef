"""The API contract: the OpenAPI document a shop serves at /openapi.json, kept in the
repository as openapi.json so that clients are generated from it and changes to it are
reviewed like code."""

from __future__ import annotations

import json
from typing import Any

from colonnade.app import create_app
from colonnade.kernel.settings import Settings


def document() -> dict[str, Any]:
    """The document of a shop serving every module, built from the settings as shipped: this
    process's environment (COLONNADE_SERVE_MODULES, a metrics token...) changes nothing in it.
    Building the app connects to nothing; quiet logs keep its warnings about development keys
    out of the output."""
    return create_app(Settings.model_construct(log_level="ERROR"), migrate=False).openapi()


def render() -> str:
    """The document as committed: sorted keys, so that a diff shows what changed in the
    contract and not the order in which routes were registered."""
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
