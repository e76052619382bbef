"""Whether a form post comes from one of the shop's own pages (the operations page's and
the storefront's forms), so no other site can make a browser send it."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request


def same_origin(request: Request) -> bool:
    """A form post must come from one of this shop's pages. Browsers say where from in
    Sec-Fetch-Site (even when, under Referrer-Policy no-referrer, their Origin is "null");
    older ones only in Origin. Clients that are not browsers send neither and cannot be made
    to post by another site."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site == "same-origin"
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host")
