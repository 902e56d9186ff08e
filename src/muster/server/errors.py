"""One exception handler: a MusterError family becomes an HTTP status and a JSON body.

Every rejected request answers ``{"message": ..., "detail": [{"field": ...,
"problem": ...}]}`` so a client can point at the offending input; FastAPI's
own request validation and HTTP errors are folded into the same shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from muster.errors import (
    AuthenticationError,
    ConflictError,
    MusterError,
    NotFoundError,
    PermissionDeniedError,
    StoreUnavailable,
    TooManyAttemptsError,
    TransportError,
    ValidationError,
)

__all__ = ["error_body", "install_error_handlers", "status_for"]

# Most specific first: StateTransitionError is a ConflictError, ParameterError a ValidationError.
_STATUS: tuple[tuple[type[MusterError], int], ...] = (
    (ValidationError, 422),
    (NotFoundError, 404),
    (ConflictError, 409),
    (TooManyAttemptsError, 429),
    (StoreUnavailable, 503),
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (TransportError, 502),
)


def status_for(exc: MusterError) -> int:
    """The HTTP status of an error family; unknown families are a bad request."""
    for family, status in _STATUS:
        if isinstance(exc, family):
            return status
    return 400


def error_body(message: str, detail: Sequence[tuple[str | None, str]]) -> dict[str, Any]:
    return {
        "message": message,
        "detail": [{"field": field, "problem": problem} for field, problem in detail],
    }


def _muster_detail(exc: MusterError) -> list[tuple[str | None, str]]:
    if isinstance(exc, ValidationError):
        if exc.problems:
            return list(exc.problems.items())
        return [(exc.field, exc.message)]
    return [(None, str(exc))]


def _loc_field(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie"):
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _on_muster_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MusterError)
    headers = None
    if isinstance(exc, StoreUnavailable):
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))}
    return JSONResponse(
        error_body(str(exc), _muster_detail(exc)), status_code=status_for(exc), headers=headers
    )


async def _on_request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail: list[tuple[str | None, str]] = []
    for err in exc.errors():
        problem = str(err.get("msg", "invalid"))
        if err.get("type") == "extra_forbidden":
            problem = "unknown field"
        detail.append((_loc_field(err.get("loc", ())), problem))
    message = "; ".join(f"{f}: {p}" for f, p in detail) or "invalid request"
    return JSONResponse(error_body(message, detail), status_code=422)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = str(exc.detail)
    return JSONResponse(
        error_body(message, [(None, message)]),
        status_code=exc.status_code,
        headers=getattr(exc, "headers", None),
    )


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    # A safety net: store operations translate their own database errors; one
    # that slipped through is translated the same way here, never shown raw.
    from muster.store.db_errors import translate

    mapped = translate(exc)
    if not isinstance(mapped, MusterError):
        raise exc
    return await _on_muster_error(request, mapped)


def install_error_handlers(app: FastAPI) -> None:
    from muster.store.db_errors import DATABASE_ERRORS

    for family in DATABASE_ERRORS:
        app.add_exception_handler(family, _on_database_error)
    app.add_exception_handler(MusterError, _on_muster_error)
    app.add_exception_handler(RequestValidationError, _on_request_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
