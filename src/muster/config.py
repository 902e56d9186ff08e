"""The server's and workers' configuration: one object, built at the edge.

Every field can be set by an environment variable with the ``MUSTER_`` prefix
(``MUSTER_DATA_DIR``, ``MUSTER_DATABASE_URL``, ...) or passed explicitly.
Nothing below the edge reads ``os.environ``; it receives a :class:`Settings`.

The data directory defaults to ``./.muster`` (beside where ``muster serve``
is started), so a newcomer sees and can delete everything muster wrote; set
``MUSTER_DATA_DIR`` (or ``--data-dir``) to keep it elsewhere, for example
``~/.local/share/muster`` for a long-lived installation. It holds the SQLite
database (unless ``MUSTER_DATABASE_URL`` points elsewhere) and the secret key
file (``secret.key``, mode 0600) when ``MUSTER_SECRET_KEY`` is not given,
so it is kept at mode 0700: local runs on a server (as ``MUSTER_LOCAL_RUN_AS``)
must not read it.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from muster.domain.egress import EgressPolicy

__all__ = ["DEFAULT_DATA_DIR", "Settings", "normalise_database_url"]

DEFAULT_DATA_DIR = Path(".muster")


def normalise_database_url(url: str) -> str:
    """Pick the psycopg 3 driver for plain ``postgresql://`` / ``postgres://`` URLs."""
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class Settings(BaseSettings):
    """Knobs for storage, the queue and the HTTP listener."""

    model_config = SettingsConfigDict(env_prefix="MUSTER_", extra="ignore")

    data_dir: Path = DEFAULT_DATA_DIR
    #: Empty means SQLite at ``<data_dir>/muster.db`` (WAL mode).
    database_url: str = ""
    #: Base64 (url-safe) of 32 random bytes; empty means ``<data_dir>/secret.key``.
    secret_key: SecretStr = SecretStr("")
    #: Older keys (comma-separated), still readable while ``muster secrets rotate-key`` runs.
    old_secret_keys: SecretStr = SecretStr("")
    #: HMAC key of the audit chain (url-safe base64 of 32 bytes); empty means
    #: ``<data_dir>/audit.key``. Never stored in the database.
    audit_key: SecretStr = SecretStr("")
    #: known_hosts file the server's workers verify SSH host keys against (empty: ~/.ssh).
    ssh_known_hosts: str = ""
    #: Default SSH private key files for hosts without a key file or credential.
    ssh_client_keys: list[str] = Field(default_factory=list)
    #: Stored output per host run (stdout and stderr together); the rest is counted.
    output_cap_bytes: int = Field(default=1024 * 1024, ge=1024)
    lease_seconds: float = Field(default=30.0, gt=0)
    heartbeat_seconds: float = Field(default=10.0, gt=0)
    #: A queued run nobody claims within this many seconds fails (not_picked_up).
    queued_timeout: float = Field(default=30 * 60.0, gt=0)
    worker_concurrency: int = Field(default=16, ge=1)
    #: ``muster serve`` runs one scheduler (``MUSTER_SCHEDULER=false`` or
    #: ``--no-scheduler``: none; run ``muster scheduler`` elsewhere instead).
    scheduler: bool = True
    #: How often a scheduler looks for due ticks (a follower: tries to take the lead).
    scheduler_poll: float = Field(default=1.0, gt=0, le=60)
    #: On SIGTERM, how long in-flight runs may take before they are stopped.
    shutdown_grace: float = Field(default=30.0, ge=0)
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    #: Networks (CIDR) and host names webhooks may target although they are not public
    #: (loopback, private, link-local, ...), separated by commas or spaces.
    webhook_allow: str = ""
    #: Seconds one webhook delivery attempt may take (a claim is held a little longer).
    webhook_timeout: float = Field(default=10.0, gt=0, le=300)
    #: Attempts per event before it is given up (``failed``); waits between them double
    #: from 0.5 s up to ``webhook_retry_max`` (the default retries for about 1.6 hours).
    webhook_max_attempts: int = Field(default=20, ge=1, le=1000)
    webhook_retry_max: float = Field(default=600.0, gt=0)
    #: Largest request body in bytes (413 above it, before it is read); host
    #: imports have their own limit. Room for a largest script body with its
    #: JSON escaping.
    max_request_bytes: int = Field(default=2 * 1024 * 1024, ge=4096)
    #: Largest inventory upload (``POST /api/v1/hosts/import``) in bytes.
    max_import_bytes: int = Field(default=4 * 1024 * 1024, ge=4096)
    #: Largest published rollout report (``POST /api/v1/rollouts``) in bytes (413 above).
    max_rollout_report_bytes: int = Field(default=1024 * 1024, ge=4096)
    #: Most hosts one import may define (422 above it). It also bounds the
    #: parse: at most 10 host entries per host (a host named on several lines
    #: counts once per line) and 50 variables per host once group variables
    #: are copied to their members.
    max_import_hosts: int = Field(default=20_000, ge=1)
    #: Largest script body, ad-hoc command and single parameter value, in
    #: UTF-8 bytes (422 above them, naming the field and the limit).
    max_script_bytes: int = Field(default=1024 * 1024, ge=1)
    max_command_bytes: int = Field(default=64 * 1024, ge=1)
    max_parameter_bytes: int = Field(default=64 * 1024, ge=1)
    #: Reverse proxies (addresses or networks, e.g. ``["10.0.0.5", "fd00::/8"]``)
    #: whose ``X-Forwarded-For`` names the client. Empty: the header is ignored and
    #: the connecting peer is the client (login limits and audit use that address).
    trusted_proxies: list[str] = Field(default_factory=list)
    #: The unprivileged account local-transport hosts run as on a server (never the
    #: server's own: it could read the data directory). Switching needs root.
    local_run_as: str = Field(default="nobody", pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")

    @field_validator("database_url")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return normalise_database_url(value.strip())

    @field_validator("webhook_allow")
    @classmethod
    def _check_allow_list(cls, value: str) -> str:
        EgressPolicy.parse(value)  # a ValueError names the bad entry
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"trusted_proxies: {item!r} is not an IP address or network"
                ) from None
        return [item.strip() for item in value]

    def model_post_init(self, __context: object) -> None:
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError(
                f"heartbeat_seconds ({self.heartbeat_seconds}) must be shorter than "
                f"lease_seconds ({self.lease_seconds}), or every lease expires between beats"
            )

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'muster.db').resolve()}"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "secret.key"

    @property
    def audit_key_file(self) -> Path:
        return self.data_dir / "audit.key"

    def ensure_data_dir(self) -> Path:
        """Create the data directory 0700, and take group and other access away from an
        existing one: it holds the database and the vault key."""
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        mode = self.data_dir.stat().st_mode
        if mode & 0o077:
            self.data_dir.chmod(mode & 0o700)
        return self.data_dir
