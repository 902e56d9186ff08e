"""One table from asyncssh and OS errors to a HostRun failure reason.

Errors met while connecting mean the plan never started on the host
(``started=False``: safe to retry); errors met once the channel carried the
plan mean the outcome on the host is unknown (``CONNECTION_LOST``).
"""

from __future__ import annotations

import errno
import socket
from typing import Final

import asyncssh

from muster.domain.states import FailureReason
from muster.errors import TransportError

__all__ = ["connect_failure_reason", "describe", "running_failure_reason"]

_R = FailureReason

#: First match wins, so subclasses come before their bases.
_CONNECT_TABLE: Final[tuple[tuple[type[BaseException], FailureReason], ...]] = (
    (asyncssh.HostKeyNotVerifiable, _R.HOST_KEY_MISMATCH),
    (asyncssh.PermissionDenied, _R.AUTH_FAILED),
    (asyncssh.ConnectionLost, _R.CONNECTION_LOST),
    (asyncssh.DisconnectError, _R.TRANSPORT_ERROR),
    (asyncssh.ChannelOpenError, _R.TRANSPORT_ERROR),
    (TimeoutError, _R.CONNECT_TIMEOUT),
    (ConnectionRefusedError, _R.UNREACHABLE),
    (socket.gaierror, _R.UNREACHABLE),
)

_ERRNO_TABLE: Final[dict[int, FailureReason]] = {
    errno.ETIMEDOUT: _R.CONNECT_TIMEOUT,
    errno.EHOSTUNREACH: _R.UNREACHABLE,
    errno.ENETUNREACH: _R.UNREACHABLE,
    errno.ECONNREFUSED: _R.UNREACHABLE,
    errno.ECONNRESET: _R.CONNECTION_LOST,
    # A blackhole route answers local senders with EINVAL at once.
    errno.EINVAL: _R.UNREACHABLE,
}


def connect_failure_reason(exc: BaseException, *, host_known: bool) -> FailureReason:
    """Why connecting failed; an unverifiable key of an unknown host is UNKNOWN."""
    if isinstance(exc, TransportError):
        return FailureReason(exc.reason)
    for kind, reason in _CONNECT_TABLE:
        if isinstance(exc, kind):
            if reason is _R.HOST_KEY_MISMATCH and not host_known:
                return _R.HOST_KEY_UNKNOWN
            return reason
    if isinstance(exc, OSError):
        return _ERRNO_TABLE.get(exc.errno or 0, _R.UNREACHABLE)
    return _R.TRANSPORT_ERROR


def running_failure_reason(exc: BaseException) -> FailureReason:
    """Why a started plan ended without an exit status."""
    if isinstance(exc, asyncssh.DisconnectError | OSError):
        return _R.CONNECTION_LOST
    return _R.TRANSPORT_ERROR


def describe(exc: BaseException) -> str:
    """A one-line message naming the error class, for operators."""
    if isinstance(exc, TransportError):
        return str(exc)
    text = str(exc) or exc.__class__.__name__
    if isinstance(exc, TimeoutError) and not str(exc):
        text = "timed out"
    return f"{exc.__class__.__name__}: {text}"
