"""Fixtures shared across tests/unit, tests/integration and tests/e2e."""

pytest_plugins = ["tests.fleet.fixtures"]
