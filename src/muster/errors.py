"""One root error and its families.

Every error muster raises on purpose derives from :class:`MusterError`; errors of
dependencies (asyncssh, SQLAlchemy, OS) are translated at the boundary that
meets them, chained with ``from exc`` so the cause is never lost.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "InventoryError",
    "MusterError",
    "NotFoundError",
    "OperationCancelledError",
    "ParameterError",
    "PermissionDeniedError",
    "SelectorError",
    "StateTransitionError",
    "TransportError",
    "ValidationError",
]


class MusterError(Exception):
    """Root of every error muster raises deliberately."""


class ValidationError(MusterError):
    """Input was rejected before anything ran or was stored.

    ``field`` names the offending input so that an API or form can point at it.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        problems: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        #: Every offending field and its problem, when several were found at once.
        self.problems: dict[str, str] = dict(problems or ({field: message} if field else {}))


class ParameterError(ValidationError):
    """A parameter value or declaration is invalid (names the parameter)."""


class InventoryError(ValidationError):
    """An inventory source could not be parsed (names the file and line)."""


class SelectorError(ValidationError):
    """A host selector is malformed."""


class NotFoundError(MusterError):
    """A named thing does not exist."""


class ConflictError(MusterError):
    """The request conflicts with the current state (e.g. an illegal action)."""


class OperationCancelledError(MusterError):
    """A long operation stopped before it finished (its client left, or the server is
    stopping); what it had done was rolled back."""


class PermissionDeniedError(MusterError):
    """The caller lacks the permission for the action."""


class AuthenticationError(MusterError):
    """The caller is not who they claim (bad password, unknown/expired token): HTTP 401.

    Messages stay vague on purpose ("invalid credentials") so that they do not
    tell an attacker which half was wrong.
    """


class StateTransitionError(ConflictError):
    """An illegal state transition was attempted; terminal states never change."""


class TransportError(MusterError):
    """A transport could not run a plan; ``reason`` is a HostRun failure reason."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
