"""A span per HTTP request, named by method and route template: `POST /store/carts/{cart_id}`.

Mounted outermost, and only when tracing is on, so refusals by the other middlewares are
traced too and a shop without tracing pays nothing per request.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from colonnade.kernel import tracing


class RequestTracing:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        headers = {
            bytes(key).decode("latin-1"): bytes(value).decode("latin-1")
            for key, value in scope["headers"]
        }
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with tracing.serving(method, headers) as span:
            try:
                await self.app(scope, receive, send_noting_status)
            finally:
                # The router notes the matched route in the scope; no route (a 404) keeps the
                # bare method, so span names stay few.
                template = getattr(scope.get("route"), "path", None)
                if template is not None:
                    span.update_name(f"{method} {template}")
                    span.set_attribute("http.route", template)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(tracing.StatusCode.ERROR)
