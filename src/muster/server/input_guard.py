"""Refuse NUL characters in a request's path, query or JSON body with a 422.

No shell argument, environment variable or PostgreSQL text column can carry
NUL, so a value holding one can never be stored or used faithfully; refusing
it at the door gives one clear answer instead of a driver error deep inside.
"""

from __future__ import annotations

from typing import Final

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from muster.server.errors import error_body

__all__ = ["NulGuard"]

_LIMIT: Final = 16 * 1024 * 1024
_MESSAGE: Final = "NUL characters (\\u0000) are not accepted in any value"


def _reply() -> JSONResponse:
    return JSONResponse(error_body(_MESSAGE, [(None, _MESSAGE)]), status_code=422)


class NulGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "replace")
        query: bytes = scope.get("query_string", b"")
        if b"%00" in raw_path.lower() or b"%00" in query.lower() or "\x00" in scope["path"]:
            await _reply()(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if b"json" not in headers.get(b"content-type", b""):
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > _LIMIT:
                break
        if b"\\u0000" in body or b"\x00" in body:
            await _reply()(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": more}
            return await receive()

        await self.app(scope, replay, send)
