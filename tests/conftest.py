"""Fixtures shared across tests/unit, tests/integration and tests/e2e."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

pytest_plugins = ["tests.fleet.fixtures"]


@pytest.fixture(autouse=True, scope="session")
def _local_audit_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """In-process runs record to a local audit file: keep it out of the home directory
    (subprocesses inherit it through the environment)."""
    before = os.environ.get("MUSTER_AUDIT_FILE")
    os.environ["MUSTER_AUDIT_FILE"] = str(tmp_path_factory.mktemp("audit") / "audit.jsonl")
    yield
    if before is None:
        os.environ.pop("MUSTER_AUDIT_FILE", None)
    else:
        os.environ["MUSTER_AUDIT_FILE"] = before
