"""Turning a page's data into HTML: one Jinja2 environment per language (each with its own
translations installed), every value escaped unless a template says otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from colonnade.storefront.shops import Storefront
from colonnade.storefront.texts import translations

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"


def _json_ld(document: Any) -> Markup:
    """Structured data inside <script type="application/ld+json">: `<`, `>` and `&` written
    as JSON escapes, so no value can close the element or open another."""
    text = orjson.dumps(document).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)  # noqa: S704 - escaped above for a script element's content


class Renderer:
    def __init__(self) -> None:
        self._environments: dict[str, Environment] = {}

    def environment(self, babel_locale: str) -> Environment:
        found = self._environments.get(babel_locale)
        if found is None:
            found = Environment(
                loader=FileSystemLoader(TEMPLATES),
                autoescape=select_autoescape(["html", "xml"]),
                extensions=["jinja2.ext.i18n"],
                trim_blocks=True,
                lstrip_blocks=True,
                # Templates change with the package, not while it runs.
                auto_reload=False,
            )
            found.install_gettext_translations(  # type: ignore[attr-defined]
                translations(babel_locale), newstyle=True
            )
            found.filters["json_ld"] = _json_ld
            self._environments[babel_locale] = found
        return found

    def render(self, shop: Storefront, name: str, context: dict[str, Any]) -> str:
        template = self.environment(shop.babel).get_template(name)
        return template.render(shop=shop, **context)
