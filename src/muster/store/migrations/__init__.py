"""Schema migrations (Alembic), run from code: no alembic.ini to ship or find.

``upgrade(url_or_engine)`` brings a database to the newest revision; the
server and workers call it on start, so a fresh data directory needs no
separate step. Several processes starting at once are safe on PostgreSQL
(an advisory lock serialises them) and on SQLite (the migration runs in one
IMMEDIATE transaction).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

__all__ = ["alembic_config", "current_revision", "head_revision", "upgrade"]

_HERE = Path(__file__).resolve().parent
#: Any constant shared by every muster process; serialises concurrent upgrades.
_ADVISORY_LOCK_ID = 0x6D75737465720001


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_HERE))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", str(_HERE / "versions"))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database behind ``engine`` to ``revision``."""
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK_ID})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
