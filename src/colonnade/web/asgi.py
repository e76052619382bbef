"""Small pieces the shop's ASGI middlewares share: reading a body once and replaying it."""

from __future__ import annotations

from typing import Any

from starlette.types import Message, Receive, Scope, Send

from colonnade.web.problems import problem_response

_BASE = "https://colonnade.dev/problems/"


def replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the already-read `body`, then defers to the client."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


# Where the first middleware to read a request's body leaves it for the ones inside it.
_BODY = "colonnade.body"


def keep_body(scope: Scope, body: bytes, receive: Receive) -> Receive:
    """Remember the already-read `body` for the middlewares inside; the app gets it replayed."""
    scope[_BODY] = body
    return replaying(body, receive)


async def buffered_body(scope: Scope, receive: Receive) -> tuple[bytes, Receive]:
    """The whole body, read from the client only once however many middlewares look at it
    (the size limit in front has already bounded it), and the `receive` to pass on."""
    if _BODY in scope:
        return scope[_BODY], receive
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    return body, keep_body(scope, body, receive)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def media_type(scope: Scope) -> str:
    return (header(scope, b"content-type") or "").split(";", 1)[0].strip().lower()


async def send_problem(
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> None:
    response = problem_response(
        {
            "type": _BASE + code.replace("_", "-"),
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
            **extensions,
        },
        headers,
    )
    await response(scope, receive, send)
