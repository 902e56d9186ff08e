"""Test helpers shipped with muster: fakes that keep the real contracts.

- :class:`InMemoryStore` keeps the :class:`~muster.store.base.Store` contract
  (the same errors, compare-and-set rules and roll-up as the SQL store; the
  Store contract suite runs on both) without a database.
- :class:`FakeClock` is a clock a test moves by hand: leases, timeouts and
  delays without sleeping.
- :class:`ScriptedTransport` keeps the Transport contract (never raises
  per-host failures; cancellation propagates) so unit tests of the engine,
  and of users' own code, run fast.
- The simulated fleet (:mod:`muster.testing.simfleet`) is a real asyncssh
  server, for tests and demos that need thousands of hosts.
"""

from muster.testing.clock import FakeClock
from muster.testing.memory_store import InMemoryStore
from muster.testing.scripted import ScriptedRun, ScriptedTransport

__all__ = ["FakeClock", "InMemoryStore", "ScriptedRun", "ScriptedTransport"]
