"""A shopper's session: which cart is theirs in each market, and the secret their forms
carry against cross-site requests, in a cookie the shop signs (a JWT under a key of the
storefront's own, so no other token of the shop passes for one). A signed-in customer's
access token rides in a second cookie; both are HttpOnly and SameSite=Lax, and Secure
behind HTTPS.

Nothing in the session needs keeping on the server: a cart id is unguessable and a guest
cart is anyone's who holds it, so the cookie is the whole of a guest's state."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field, replace

import jwt

SESSION = "colonnade_store"
CUSTOMER = "colonnade_customer"
# Long enough for a cart to be come back to; the cart's own idle expiry decides its life.
SESSION_SECONDS = 30 * 24 * 3600
_AUDIENCE = "colonnade-storefront"


@dataclass(frozen=True)
class Session:
    csrf: str
    carts: dict[str, str] = field(default_factory=dict)

    def with_cart(self, market: str, cart_id: str | None) -> Session:
        carts = {k: v for k, v in self.carts.items() if k != market}
        if cart_id is not None:
            carts[market] = cart_id
        return replace(self, carts=carts)

    def form_matches(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(self.csrf, sent)


def fresh() -> Session:
    return Session(csrf=secrets.token_urlsafe(24))


class SessionSeal:
    def __init__(self, secret: str) -> None:
        # A key of the storefront's own, derived from the shop's secret.
        self._key = hashlib.sha256(b"colonnade storefront session\x00" + secret.encode()).digest()

    def seal(self, session: Session) -> str:
        return jwt.encode(
            {"aud": _AUDIENCE, "csrf": session.csrf, "carts": session.carts},
            self._key,
            algorithm="HS256",
        )

    def open(self, cookie: str | None) -> Session | None:
        """The session a cookie holds; None when there is none or it is not the shop's."""
        if not cookie:
            return None
        try:
            claims = jwt.decode(cookie, self._key, algorithms=["HS256"], audience=_AUDIENCE)
        except jwt.PyJWTError:
            return None
        carts = claims.get("carts")
        csrf = claims.get("csrf")
        if not isinstance(csrf, str) or not isinstance(carts, dict):
            return None
        return Session(csrf=csrf, carts={str(k): str(v) for k, v in carts.items()})
