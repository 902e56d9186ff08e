"""Transports run a Plan on one host and stream its output."""

from muster.transports.base import OutputSink, Stream, Transport, TransportOutcome

__all__ = ["OutputSink", "Stream", "Transport", "TransportOutcome"]
