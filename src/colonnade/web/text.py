"""No NUL characters in what a client sends: PostgreSQL cannot store them in text, and no
shop field has a use for them, so they are refused at the door (422) wherever they are —
path, query string, JSON or form body — instead of failing deep inside a query."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from colonnade.web.asgi import buffered_body, media_type, send_problem

# As they arrive: percent-encoded in URLs and forms, escaped in JSON.
_ENCODED_NUL = (b"%00", b"\\u0000", b"\x00")


def _holds_nul(raw: bytes) -> bool:
    return any(marker in raw for marker in _ENCODED_NUL)


class NulCharacterGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        location = None
        if "\x00" in scope["path"]:
            location = "path"
        elif _holds_nul(scope.get("query_string", b"")):
            location = "query"
        else:
            media = media_type(scope)
            if media.endswith("json") or media == "application/x-www-form-urlencoded":
                body, receive = await buffered_body(scope, receive)
                if _holds_nul(body):
                    location = "body"
        if location is None:
            await self.app(scope, receive, send)
            return
        await send_problem(
            scope,
            receive,
            send,
            status=422,
            code="nul_character",
            title="Invalid input",
            detail=f"the {location} holds a NUL character, which no field of the shop accepts",
            location=location,
        )
