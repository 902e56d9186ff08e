"""What the database's exceptions mean, for layers that must not know SQLAlchemy.

Until every store operation translates its own database errors into the
:mod:`muster.errors` hierarchy (issue 10), the server maps these at its edge.
"""

from __future__ import annotations

from sqlalchemy.exc import DataError

__all__ = ["VALUE_REFUSED"]

#: The database refused a value that validation let through (too long, out of range).
VALUE_REFUSED: tuple[type[Exception], ...] = (DataError,)
