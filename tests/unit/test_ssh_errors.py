"""The one table from asyncssh/OS errors to failure reasons."""

from __future__ import annotations

import errno
import socket

import asyncssh
import pytest

from muster.domain.states import FailureReason as R
from muster.transports.ssh_errors import connect_failure_reason, describe, running_failure_reason


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (asyncssh.PermissionDenied("no"), R.AUTH_FAILED),
        (asyncssh.ConnectionLost("gone"), R.CONNECTION_LOST),
        (asyncssh.ProtocolError("bad"), R.TRANSPORT_ERROR),
        (asyncssh.ChannelOpenError(2, "refused"), R.TRANSPORT_ERROR),
        (TimeoutError(), R.CONNECT_TIMEOUT),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), R.UNREACHABLE),
        (socket.gaierror(-2, "Name or service not known"), R.UNREACHABLE),
        (OSError(errno.EHOSTUNREACH, "No route to host"), R.UNREACHABLE),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), R.UNREACHABLE),
        (OSError(errno.ETIMEDOUT, "timed out"), R.CONNECT_TIMEOUT),
        (OSError(errno.EINVAL, "Invalid argument"), R.UNREACHABLE),
        (ValueError("odd"), R.TRANSPORT_ERROR),
    ],
)
def test_connect_errors_map_to_precise_reasons(exc: BaseException, reason: R) -> None:
    assert connect_failure_reason(exc, host_known=True) is reason


def test_an_unverifiable_key_is_a_mismatch_only_for_a_known_host() -> None:
    exc = asyncssh.HostKeyNotVerifiable("Host key is not trusted")
    assert connect_failure_reason(exc, host_known=True) is R.HOST_KEY_MISMATCH
    assert connect_failure_reason(exc, host_known=False) is R.HOST_KEY_UNKNOWN


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (asyncssh.ConnectionLost("keepalive"), R.CONNECTION_LOST),
        (asyncssh.DisconnectError(11, "bye"), R.CONNECTION_LOST),
        (ConnectionResetError(), R.CONNECTION_LOST),
        (RuntimeError("?"), R.TRANSPORT_ERROR),
    ],
)
def test_errors_after_the_plan_started(exc: BaseException, reason: R) -> None:
    assert running_failure_reason(exc) is reason


def test_describe_names_the_error_class() -> None:
    assert describe(TimeoutError()) == "TimeoutError: timed out"
    assert describe(ConnectionRefusedError(111, "refused")).startswith("ConnectionRefusedError:")
