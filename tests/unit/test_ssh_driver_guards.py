"""The SSH driver's own guards, behind the domain's checks: a plan that reaches the
driver with a non-positive timeout or a NUL in an argument is refused, and a
transport error raised while connecting keeps its own reason."""

from __future__ import annotations

import pytest

from muster.domain.states import FailureReason
from muster.errors import TransportError
from muster.transports.ssh_driver import _check_text, _seconds
from muster.transports.ssh_errors import connect_failure_reason


@pytest.mark.parametrize("timeout", [0, -1.5])
def test_a_timeout_must_be_positive(timeout: float) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        _seconds(timeout)


def test_timeouts_are_written_without_trailing_zeros() -> None:
    assert _seconds(2.5) == "2.5" and _seconds(30) == "30"


def test_an_argument_with_nul_is_refused() -> None:
    with pytest.raises(ValueError, match="command argument cannot contain a NUL"):
        _check_text("a\x00b", "command argument")


def test_a_transport_error_keeps_its_reason() -> None:
    exc = TransportError("no route", reason=FailureReason.UNREACHABLE.value)
    assert connect_failure_reason(exc, host_known=True) is FailureReason.UNREACHABLE


def test_an_unknown_error_while_connecting_is_a_transport_error() -> None:
    assert (
        connect_failure_reason(LookupError("odd"), host_known=False)
        is FailureReason.TRANSPORT_ERROR
    )
