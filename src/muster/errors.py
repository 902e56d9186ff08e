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
    "LoginFailedError",
    "MusterError",
    "NotFoundError",
    "OperationCancelledError",
    "ParameterError",
    "PermissionDeniedError",
    "SelectorError",
    "StateTransitionError",
    "StoreUnavailable",
    "TooManyAttemptsError",
    "TransportError",
    "ValidationError",
    "VaultError",
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


class LoginFailedError(AuthenticationError):
    """A password login failed (wrong password, unknown user, locked): HTTP 401.

    ``attempts`` counts the failures of this user name from this client
    address in the current window, so the caller can aggregate its records.
    """

    def __init__(self, message: str, *, attempts: int = 0) -> None:
        super().__init__(message)
        self.attempts = attempts


class TooManyAttemptsError(AuthenticationError):
    """Logins from one client address are paused for a while: HTTP 429 with Retry-After.

    It names no user, so it tells an attacker nothing about accounts.
    """

    def __init__(self, message: str, *, retry_after: float, attempts: int = 0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        #: Attempts from the address in its current window, this one included.
        self.attempts = attempts


class StoreUnavailable(MusterError):
    """The database cannot be reached or is overloaded right now: HTTP 503 with Retry-After.

    Nothing was changed; the same request may simply be sent again later.
    """

    def __init__(self, message: str, *, retry_after: float = 5.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class VaultError(MusterError):
    """A secret cannot be sealed or opened (no key, wrong key, tampered token)."""


class StateTransitionError(ConflictError):
    """An illegal state transition was attempted; terminal states never change."""


class TransportError(MusterError):
    """A transport could not run a plan; ``reason`` is a HostRun failure reason."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
