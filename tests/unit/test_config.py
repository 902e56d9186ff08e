"""Settings: MUSTER_ variables, URL normalisation, sane lease/heartbeat."""

from __future__ import annotations

import pytest

from muster.config import Settings, normalise_database_url


def test_environment_overrides_and_defaults(monkeypatch, tmp_path):
    monkeypatch.setenv("MUSTER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MUSTER_LEASE_SECONDS", "9")
    monkeypatch.setenv("MUSTER_HEARTBEAT_SECONDS", "3")
    s = Settings()
    assert s.data_dir == tmp_path and s.lease_seconds == 9 and s.heartbeat_seconds == 3
    assert s.effective_database_url == f"sqlite:///{tmp_path / 'muster.db'}"
    assert s.queued_timeout == 1800 and s.port == 8080 and s.host == "127.0.0.1"
    assert s.key_file == tmp_path / "secret.key"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_postgres_urls_get_the_psycopg3_driver(url, expected):
    assert normalise_database_url(url) == expected
    assert Settings(database_url=url).effective_database_url == expected


def test_heartbeat_must_be_shorter_than_the_lease():
    with pytest.raises(ValueError, match="heartbeat_seconds"):
        Settings(lease_seconds=5, heartbeat_seconds=5)
