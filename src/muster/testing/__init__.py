"""Test helpers shipped with muster: a scripted transport and a simulated SSH fleet.

The scripted transport keeps the Transport contract (never raises per-host
failures; cancellation propagates) so unit tests of the engine, and of users'
own code, run fast. The simulated fleet (:mod:`muster.testing.simfleet`) is a
real asyncssh server, for tests and demos that need thousands of hosts.
"""

from muster.testing.scripted import ScriptedRun, ScriptedTransport

__all__ = ["ScriptedRun", "ScriptedTransport"]
