"""The database's exceptions, translated once into the :mod:`muster.errors` hierarchy.

Every store operation runs inside :func:`translated`, so no layer above the
store ever sees a SQLAlchemy exception: a refused value is a
``ValidationError`` (422), a broken uniqueness or reference rule a
``ConflictError`` (409), a database that cannot be reached or is locked
``StoreUnavailable`` (503 with Retry-After). The driver's own text is kept as
the cause (``from exc``) for the log, never shown to a client.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import (
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from muster.errors import ConflictError, StoreUnavailable, ValidationError

__all__ = ["DATABASE_ERRORS", "translate", "translated"]

#: What a store call may raise from the database; see :func:`translate`.
DATABASE_ERRORS: tuple[type[Exception], ...] = (DBAPIError, PoolTimeout)


def translate(exc: Exception) -> Exception:
    """The muster error for a database exception (the exception itself if none fits)."""
    if isinstance(exc, IntegrityError):
        return ConflictError("the change conflicts with stored data (a duplicate or a reference)")
    if isinstance(exc, DataError):
        return ValidationError(
            "a value does not fit what the database can store (too long or out of range)"
        )
    if isinstance(exc, PoolTimeout | InterfaceError) or (
        isinstance(exc, OperationalError | DBAPIError) and exc.connection_invalidated
    ):
        return StoreUnavailable("the database cannot be reached; try again shortly")
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower()
        if "locked" in text or "busy" in text:
            return StoreUnavailable("the database is busy; try again shortly", retry_after=1.0)
        return StoreUnavailable("the database cannot be reached; try again shortly")
    return exc


@contextmanager
def translated() -> Iterator[None]:
    """Run a block of store work; database errors leave it as muster errors."""
    try:
        yield
    except DATABASE_ERRORS as exc:
        mapped = translate(exc)
        if mapped is exc:
            raise
        raise mapped from exc
