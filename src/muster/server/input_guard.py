"""Guards at the door, before any route reads a request: body size, and NUL characters.

:class:`BodyLimit` answers 413 (naming the limit) for a body larger than the
limit: from ``Content-Length`` before a byte is read, and for a streamed
(chunked) body by counting bytes as they arrive, so nothing ever buffers more
than the limit. Host imports have their own, larger limit.

:class:`NulGuard` answers 422 for a NUL character in the path, the query or
any decoded value of a JSON or urlencoded body. No shell argument,
environment variable or PostgreSQL text column can carry NUL, so a value
holding one can never be stored or used faithfully; refusing it at the door
gives one clear answer instead of a driver error deep inside. It checks
*decoded* values: the six characters ``\\u0000`` written in a script (JSON
``"\\\\u0000"``) are text, not a NUL, and pass.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from muster.config import Settings
from muster.server.errors import error_body
from muster.server.limits import human_bytes

__all__ = ["IMPORT_PATH", "BodyLimit", "BodyTooLargeError", "NulGuard", "install_body_limits"]

#: The one route whose body may be larger than ``max_request_bytes``.
IMPORT_PATH: Final = "/api/v1/hosts/import"

_NUL_MESSAGE: Final = "NUL characters (\\u0000) are not accepted in any value"


def _too_large_message(limit: int) -> str:
    return f"the request body is larger than the limit of {limit} bytes ({human_bytes(limit)})"


class BodyTooLargeError(HTTPException):
    """Raised from ``receive`` when a streamed body passes its limit: a 413 wherever it
    surfaces (the JSON error handler, a console page, or :class:`BodyLimit` itself)."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=_too_large_message(limit))
        self.limit = limit


def _reply(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, [(field, message)]), status_code=status)


class BodyLimit:
    """Refuse request bodies over ``limit`` bytes (``per_path``: exact paths with their own)."""

    def __init__(self, app: ASGIApp, limit: int, per_path: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.limit = limit
        self.per_path = dict(per_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.limit)
        for key, value in scope.get("headers") or ():
            if key == b"content-length" and value.isdigit() and int(value) > limit:
                await _reply(413, _too_large_message(limit))(scope, receive, send)
                return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLargeError as exc:
            if started:
                raise
            await _reply(413, str(exc.detail))(scope, receive, send)


def _nul_path(value: Any, path: str) -> str | None:
    """Where (a dotted field path) a decoded JSON value holds a NUL, or None.

    Iterative, so a deeply nested body cannot exhaust the stack.
    """
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return where
        elif isinstance(item, dict):
            for key, sub in item.items():
                if "\x00" in key:
                    return where
                stack.append((sub, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((sub, f"{where}.{i}" if where else str(i)) for i, sub in enumerate(item))
    return None


def _body_nul(content_type: bytes, body: bytes) -> tuple[bool, str | None]:
    """(holds a NUL, field) for a JSON or urlencoded body; undecodable bodies pass on
    (the route reports them)."""
    if b"\x00" in body:
        return True, None
    if b"json" in content_type:
        if b"\\u0000" not in body:
            return False, None
        try:
            decoded = json.loads(body)
        except (ValueError, RecursionError):
            return False, None
        where = _nul_path(decoded, "")
        return where is not None, where or None
    if b"%00" not in body.lower():
        return False, None
    text = body.decode("utf-8", "replace")
    for key, value in parse_qsl(text, keep_blank_values=True):
        if "\x00" in key or "\x00" in value:
            return True, key.replace("\x00", "")
    return False, None


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
            await _reply(422, _NUL_MESSAGE)(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").lower()
        if b"json" not in content_type and b"x-www-form-urlencoded" not in content_type:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before sending its body: nobody to answer
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        found, field = _body_nul(content_type, body)
        if found:
            await _reply(422, _NUL_MESSAGE, field)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def install_body_limits(app: FastAPI, settings: Settings) -> None:
    """Add :class:`BodyLimit` outermost (added last, it runs first): no other middleware
    reads a body before its size is checked."""
    app.add_middleware(
        BodyLimit,
        limit=settings.max_request_bytes,
        per_path={IMPORT_PATH: settings.max_import_bytes},
    )
