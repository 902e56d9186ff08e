"""The audit of in-process runs: a JSON-lines file chained like the server's audit log.

Library and CLI runs (``muster.Engine``, ``muster.run``, ``muster run``,
``muster workflow run``) have no server to record what they did, so every
plan they hand a host goes through :class:`AuditedTransport`, which appends
two records per host run to a local file:

* ``host.run.start`` before the plan reaches the host: who (the local
  user), the host, each command's argv and each script's name and SHA-256;
* ``host.run.end`` after it: the same plus start and end times, the
  outcome, the failure reason and the exit code.

Each line is one :class:`~muster.security.audit.AuditRecord` (its hashed body
plus ``hash``), chained and keyed by :mod:`muster.security.audit` exactly as
the server's records are, so ``muster audit verify-file`` finds an edited,
removed or reordered line and names the first bad one. The key is the file
``<audit file stem>.key`` beside it (mode 0600, created on first use).
Values the plan carries as secrets are masked before hashing.

Writers serialise on an exclusive ``flock`` of the file: the head read and
the append happen under it, so two processes (or threads) writing the same
file never fork the chain.

When the audit cannot be written the run is not silent about it: a file
that cannot be opened (or whose key cannot be loaded) stops the run before
any host starts; a start record that cannot be appended fails that host
with ``transport_error`` and the plan is never sent; an end record that
cannot be appended turns the host's outcome into ``transport_error`` with a
message saying what the plan did, because it did run.
"""

from __future__ import annotations

import contextlib
import fcntl
import getpass
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from muster.domain.hosts import Host, TransportKind
from muster.domain.plans import Plan
from muster.domain.secret import Secret
from muster.domain.states import FailureReason, HostRunState
from muster.errors import MusterError, ValidationError
from muster.security.audit import (
    AuditKeyError,
    AuditKeys,
    AuditRecord,
    VerifyResult,
    chain_line,
    load_audit_keys,
    verify_chain,
)
from muster.security.masking import mask_mapping
from muster.transports.base import OutputSink, Transport, TransportOutcome

__all__ = [
    "AUDIT_FILE_ENV",
    "AuditWriteError",
    "AuditedTransport",
    "FileVerifyResult",
    "LocalAuditLog",
    "audited",
    "default_audit_path",
    "read_records",
    "verify_file",
]

AUDIT_FILE_ENV: Final = "MUSTER_AUDIT_FILE"
START_ACTION: Final = "host.run.start"
END_ACTION: Final = "host.run.end"
#: Longer argv entries are recorded by hash and head only (an inline script, say).
_ARG_CAP: Final = 4096
_TAIL_CHUNK: Final = 8192


class AuditWriteError(MusterError):
    """The local audit file could not be opened, read or appended to."""


def default_audit_path() -> Path:
    """``MUSTER_AUDIT_FILE``, else ``$XDG_STATE_HOME/muster/audit.jsonl``
    (``~/.local/state/muster/audit.jsonl``)."""
    explicit = os.environ.get(AUDIT_FILE_ENV, "")
    if explicit:
        return Path(explicit).expanduser()
    state = os.environ.get("XDG_STATE_HOME", "") or os.path.expanduser("~/.local/state")
    return Path(state) / "muster" / "audit.jsonl"


def key_path_for(path: Path) -> Path:
    return path.with_name(path.stem + ".key")


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


def _record_line(rec: AuditRecord) -> bytes:
    body = rec.body()
    body["hash"] = rec.hash
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _parse_line(line: bytes) -> AuditRecord:
    """One line back as a record; ``ValueError`` (with why) when it is not one."""
    try:
        data = json.loads(line)
        at = datetime.fromisoformat(str(data["at"]).replace("Z", "+00:00"))
        return AuditRecord(
            seq=int(data["seq"]),
            at=at,
            actor=str(data["actor"]),
            action=str(data["action"]),
            target=str(data["target"]),
            address=data["address"],
            details=data["details"],
            prev_hash=str(data["prev_hash"]),
            hash=str(data["hash"]),
            key_id=data.get("key_id"),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not an audit record ({exc.__class__.__name__}: {exc})") from None


class LocalAuditLog:
    """An open audit file and its key; :meth:`append` adds one chained record."""

    def __init__(self, path: Path, *, actor: str | None = None) -> None:
        self.path = path
        self.actor = actor or _local_user()
        self._thread_lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise AuditWriteError(f"audit file {path}: cannot open ({exc.strerror})") from None
        try:
            with self._locked():
                keys, _ = load_audit_keys("", key_path_for(path), create=True)
        except (AuditKeyError, OSError) as exc:
            os.close(self._fd)
            raise AuditWriteError(f"audit file {path}: key {key_path_for(path)}: {exc}") from None
        assert keys is not None
        self._keys: AuditKeys = keys
        #: (file size after our last append, its seq, its hash); see :meth:`_link_at`.
        self._tail: tuple[int, int, str] | None = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _head(self) -> AuditRecord | None:
        """The last record (under the lock): read backwards from the end only."""
        size = os.fstat(self._fd).st_size
        if size == 0:
            return None
        tail = b""
        pos = size
        while pos > 0:
            step = min(_TAIL_CHUNK, pos)
            pos -= step
            tail = os.pread(self._fd, step, pos) + tail
            body = tail.rstrip(b"\n")
            if b"\n" in body or pos == 0:
                break
        last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        try:
            return _parse_line(last)
        except ValueError as exc:
            raise AuditWriteError(
                f"audit file {self.path}: its last line is {exc}; the chain cannot be "
                "continued (run `muster audit verify-file` on it)"
            ) from None

    def append(
        self,
        action: str,
        target: str,
        address: str | None,
        details: Mapping[str, Any],
        secrets: tuple[str | Secret, ...] = (),
    ) -> tuple[int, str]:
        """Chain one record onto the file; its (seq, hash)."""
        if secrets:
            details = mask_mapping(dict(details), (), secrets)
        try:
            with self._locked():
                size = os.fstat(self._fd).st_size
                link = self._link_at(size)
                seq, digest, line = chain_line(
                    link,
                    keys=self._keys,
                    at=datetime.now(UTC),
                    actor=self.actor,
                    action=action,
                    target=target,
                    address=address,
                    details=details,
                )
                line += b"\n"
                written = os.write(self._fd, line)
                if written != len(line):
                    raise AuditWriteError(
                        f"audit file {self.path}: short write ({written} of {len(line)} bytes)"
                    )
                self._tail = (size + written, seq, digest)
        except ValidationError as exc:
            raise AuditWriteError(f"audit file {self.path}: {exc}") from None
        except OSError as exc:
            raise AuditWriteError(f"audit file {self.path}: cannot append ({exc})") from None
        return seq, digest

    def _link_at(self, size: int) -> tuple[int, str] | None:
        """(seq, hash) of the last record, with the file ``size`` bytes long.

        What this log wrote last is remembered with the file's size after it:
        while nobody else has appended, that is the head, and the file is not
        read back (a fleet run appends two records per host). Another writer's
        append changes the size, and the head is read from the file again.
        """
        if self._tail is not None and self._tail[0] == size:
            return self._tail[1], self._tail[2]
        head = self._head()
        return None if head is None else (head.seq, head.hash)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._fd)


def _describe_plan(plan: Plan) -> dict[str, Any]:
    commands: list[dict[str, Any]] = []
    for cmd in plan.commands:
        entry: dict[str, Any] = {"description": cmd.description}
        if sum(len(a) for a in cmd.argv) <= _ARG_CAP:
            entry["argv"] = list(cmd.argv)
        else:
            joined = "\0".join(cmd.argv)
            entry["argv_sha256"] = hashlib.sha256(joined.encode()).hexdigest()
            entry["argv_head"] = joined[:_ARG_CAP].replace("\0", " ")
        commands.append(entry)
    scripts = [
        {"path": f.path, "sha256": hashlib.sha256(f.content.encode()).hexdigest()}
        for f in plan.files
    ]
    return {"commands": commands, "scripts": scripts}


class AuditedTransport:
    """A transport that records every plan it runs in a :class:`LocalAuditLog`."""

    def __init__(self, inner: Transport, log: LocalAuditLog) -> None:
        self.inner = inner
        self.log = log

    def __getattr__(self, name: str) -> Any:
        # Transport-specific extras (pool counters, use_credentials) stay reachable.
        return getattr(self.inner, name)

    async def run_plan(self, host: Host, plan: Plan, sink: OutputSink) -> TransportOutcome:
        secrets = tuple(v for v in plan.env.values() if isinstance(v, Secret))
        what = _describe_plan(plan)
        started = datetime.now(UTC)
        try:
            # In the event loop: one small append to a local file costs less than a
            # thread hop, and the record must be written before the plan is sent.
            self.log.append(START_ACTION, host.name, host.address, what, secrets)
        except AuditWriteError as exc:
            return TransportOutcome(
                HostRunState.FAILED,
                reason=FailureReason.TRANSPORT_ERROR,
                message=f"not run: the local audit could not record its start: {exc}",
                started=False,
            )
        try:
            outcome = await self.inner.run_plan(host, plan, sink)
        except BaseException:
            # Cancelled (or the transport broke its promise and raised): recorded all
            # the same; what is in flight matters more than a failed audit write.
            with contextlib.suppress(AuditWriteError):
                self._record_end(host, what, started, None, secrets)
            raise
        try:
            self._record_end(host, what, started, outcome, secrets)
        except AuditWriteError as exc:
            code = outcome.exit_code
            return TransportOutcome(
                HostRunState.FAILED,
                exit_code=code,
                reason=FailureReason.TRANSPORT_ERROR,
                message=f"ran ({outcome.state.value}, exit code {code}) but the "
                f"local audit could not record its end: {exc}",
                started=outcome.started,
            )
        return outcome

    def _record_end(
        self,
        host: Host,
        what: Mapping[str, Any],
        started: datetime,
        outcome: TransportOutcome | None,
        secrets: tuple[str | Secret, ...],
    ) -> None:
        """Appended in the event loop, not a thread: a cancelled run must still record it."""
        end = outcome or TransportOutcome(
            HostRunState.CANCELLED, reason=FailureReason.CANCELLED, message="cancelled"
        )
        details = {
            **what,
            "started": started.isoformat(),
            "ended": datetime.now(UTC).isoformat(),
            "outcome": end.state.value,
            "reason": end.reason.value if end.reason is not None else None,
            "exit_code": end.exit_code,
        }
        self.log.append(END_ACTION, host.name, host.address, details, secrets)

    async def close(self) -> None:
        await self.inner.close()


def audited(
    transports: Mapping[TransportKind, Transport], log: LocalAuditLog | None
) -> dict[TransportKind, Transport]:
    """``transports`` with each one recording into ``log`` (``None``: unchanged)."""
    if log is None:
        return dict(transports)
    return {kind: AuditedTransport(t, log) for kind, t in transports.items()}


def open_audit(path: Path | str | os.PathLike[str] | bool | None) -> LocalAuditLog | None:
    """The log for a run: ``False``: none (audit turned off), ``None``/``True``: the
    default path (:func:`default_audit_path`), else that path."""
    if path is False:
        return None
    if path is None or path is True:
        return LocalAuditLog(default_audit_path())
    return LocalAuditLog(Path(os.fspath(path)).expanduser())


def read_records(path: Path) -> Iterator[tuple[int, AuditRecord | str]]:
    """(line number, record or why the line is not one) for each line of ``path``."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            try:
                yield number, _parse_line(raw.rstrip(b"\n"))
            except ValueError as exc:
                yield number, str(exc)


@dataclass(frozen=True, slots=True)
class FileVerifyResult:
    ok: bool
    checked: int
    #: The first line that breaks the chain (1-based), ``None`` when none does.
    first_bad_line: int | None = None
    problem: str | None = None


def verify_file(path: Path, key_file: Path | None = None) -> FileVerifyResult:
    """Check every line of the audit file ``path`` against its key (default:
    the ``.key`` file beside it) and name the first line that breaks the chain."""
    keys, _ = load_audit_keys("", key_file or key_path_for(path), create=False)
    if keys is None:
        raise AuditKeyError(f"no audit key at {key_file or key_path_for(path)}: pass --key-file")
    records: list[AuditRecord] = []
    lines: list[int] = []
    unreadable: tuple[int, str] | None = None
    for number, rec in read_records(path):
        if isinstance(rec, str):
            unreadable = (number, rec)
            break
        records.append(rec)
        lines.append(number)
    result: VerifyResult = verify_chain(records, keys)
    if not result.ok:
        bad = lines[result.checked] if result.checked < len(lines) else len(lines) + 1
        return FileVerifyResult(False, result.checked, bad, result.problem)
    if unreadable is not None:
        return FileVerifyResult(False, result.checked, unreadable[0], unreadable[1])
    return FileVerifyResult(True, result.checked)
