"""Scripts, their immutable versions, and the libraries they link.

A ScriptVersion is identified by the SHA-256 of its canonical content, so
"what was approved is exactly what runs" can be checked by comparing two
hex strings. A Script never edits a version: saving changed content appends
version N+1, saving identical content appends nothing.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from muster.domain.durations import check_timeout
from muster.domain.params import ParameterSpec, env_name
from muster.errors import NotFoundError, ValidationError

__all__ = ["Library", "Script", "ScriptVersion", "Shell"]

_NAME_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_MAX_NAME: Final = 128


class Shell(enum.StrEnum):
    BASH = "bash"
    SH = "sh"
    ZSH = "zsh"
    KSH = "ksh"
    PYTHON = "python"
    POWERSHELL = "powershell"
    CMD = "cmd"

    @property
    def extension(self) -> str:
        """File extension (without dot) of a script file for this shell."""
        return _EXTENSIONS[self]

    @property
    def interpreter(self) -> tuple[str, ...]:
        """argv prefix that runs a script file (the file path follows)."""
        return _INTERPRETERS[self]

    @property
    def command_argv(self) -> tuple[str, ...]:
        """argv prefix that runs a command line given as one word (which follows)."""
        return _COMMAND_ARGV[self]

    @property
    def is_windows(self) -> bool:
        return self in (Shell.POWERSHELL, Shell.CMD)

    @property
    def is_posix(self) -> bool:
        """A POSIX-family shell (bash, sh, zsh, ksh): same quoting rules."""
        return self in (Shell.BASH, Shell.SH, Shell.ZSH, Shell.KSH)


_EXTENSIONS: Final[dict[Shell, str]] = {
    Shell.BASH: "sh",
    Shell.SH: "sh",
    Shell.ZSH: "zsh",
    Shell.KSH: "ksh",
    Shell.PYTHON: "py",
    Shell.POWERSHELL: "ps1",
    Shell.CMD: "cmd",
}

_POWERSHELL: Final = ("powershell", "-NoProfile", "-NonInteractive", "-ExecutionPolicy", "Bypass")

_INTERPRETERS: Final[dict[Shell, tuple[str, ...]]] = {
    Shell.BASH: ("/bin/bash",),
    Shell.SH: ("/bin/sh",),
    Shell.ZSH: ("/bin/zsh",),
    Shell.KSH: ("/bin/ksh",),
    # -u: unbuffered, so output streams live instead of arriving at exit.
    Shell.PYTHON: ("/usr/bin/env", "python3", "-u"),
    Shell.POWERSHELL: (*_POWERSHELL, "-File"),
    Shell.CMD: ("cmd", "/c"),
}

_COMMAND_ARGV: Final[dict[Shell, tuple[str, ...]]] = {
    Shell.BASH: ("/bin/bash", "-c"),
    Shell.SH: ("/bin/sh", "-c"),
    Shell.ZSH: ("/bin/zsh", "-c"),
    Shell.KSH: ("/bin/ksh", "-c"),
    Shell.PYTHON: ("/usr/bin/env", "python3", "-u", "-c"),
    Shell.POWERSHELL: (*_POWERSHELL, "-Command"),
    Shell.CMD: ("cmd", "/c"),
}


def _check_name(kind: str, name: object) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or len(name) > _MAX_NAME:
        raise ValidationError(
            f"invalid {kind} name {name!r}: use letters, digits, '_', '.', '-', "
            f"not starting with '.' or '-', at most {_MAX_NAME} characters",
            field="name",
        )
    return name


def _check_body(body: object) -> str:
    if not isinstance(body, str):
        raise ValidationError("a body must be text", field="body")
    if "\x00" in body:
        raise ValidationError("a body cannot contain a NUL character", field="body")
    return body


@dataclass(frozen=True, slots=True)
class Library:
    """A reusable snippet; a version pins it by :attr:`hash` of its body."""

    name: str
    body: str

    def __post_init__(self) -> None:
        _check_name("library", self.name)
        _check_body(self.body)

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.body.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ScriptVersion:
    """One immutable version of a script.

    ``content_hash`` covers shell, body, parameter declarations, timeout,
    requires_approval, idempotent and linked library hashes; not the name,
    description or per-script ``version`` number, which are labels.
    """

    name: str
    shell: Shell
    body: str
    parameters: tuple[ParameterSpec, ...] = ()
    timeout: float = 300
    requires_approval: bool = False
    idempotent: bool = False
    libraries: tuple[Library, ...] = ()
    description: str = ""
    version: int | None = None
    _hash: str = field(init=False, repr=False, compare=False, default="")

    def __post_init__(self) -> None:
        _check_name("script", self.name)
        try:
            object.__setattr__(self, "shell", Shell(self.shell))
        except ValueError:
            allowed = ", ".join(s.value for s in Shell)
            raise ValidationError(
                f"unknown shell {self.shell!r} (one of {allowed})", field="shell"
            ) from None
        _check_body(self.body)
        params = tuple(self.parameters)
        if not all(isinstance(p, ParameterSpec) for p in params):
            raise ValidationError("parameters must be ParameterSpec", field="parameters")
        object.__setattr__(self, "parameters", params)
        seen: dict[str, str] = {}
        for p in params:
            # Names that differ only in case would share one environment variable.
            key = env_name(p.name)
            if key in seen:
                raise ValidationError(
                    f"parameter '{p.name}' is declared twice"
                    + (f" (as '{seen[key]}')" if seen[key] != p.name else ""),
                    field="parameters",
                )
            seen[key] = p.name
        object.__setattr__(self, "timeout", check_timeout(self.timeout))
        libs = tuple(self.libraries)
        if not all(isinstance(lib, Library) for lib in libs):
            raise ValidationError("libraries must be Library", field="libraries")
        object.__setattr__(self, "libraries", libs)
        if self.version is not None and (
            isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 1
        ):
            raise ValidationError("version must be a positive integer", field="version")
        for flag in ("requires_approval", "idempotent"):
            if not isinstance(getattr(self, flag), bool):
                raise ValidationError(f"{flag} must be a boolean", field=flag)
        object.__setattr__(self, "_hash", hashlib.sha256(self.canonical_content()).hexdigest())

    def canonical_content(self) -> bytes:
        """The bytes the content hash is computed over (stable JSON)."""
        doc: dict[str, Any] = {
            "shell": self.shell.value,
            "body": self.body,
            "parameters": [p.to_dict() for p in self.parameters],
            "timeout": self.timeout,
            "requires_approval": self.requires_approval,
            "idempotent": self.idempotent,
            "libraries": [lib.hash for lib in self.libraries],
        }
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")

    @property
    def content_hash(self) -> str:
        return self._hash

    @property
    def full_body(self) -> str:
        """Linked library bodies, in order and each followed by a newline, then the body."""
        return "".join(lib.body + "\n" for lib in self.libraries) + self.body

    def same_content(self, other: ScriptVersion) -> bool:
        return self._hash == other._hash


class Script:
    """The version history of one named script, and the rule for saving.

    Pure bookkeeping: persistence belongs to the store, which loads the
    versions it holds into a Script, calls :meth:`save`, and writes the
    version returned when ``created`` is true.
    """

    __slots__ = ("_versions", "name")

    def __init__(self, name: str, versions: Iterable[ScriptVersion] = ()) -> None:
        self.name = _check_name("script", name)
        self._versions: list[ScriptVersion] = []
        for v in versions:
            expected = len(self._versions) + 1
            if v.name != name or v.version != expected:
                raise ValidationError(
                    f"script '{name}': expected version {expected} of '{name}', "
                    f"got version {v.version} of '{v.name}'",
                    field="versions",
                )
            self._versions.append(v)

    @property
    def versions(self) -> tuple[ScriptVersion, ...]:
        """Every version, oldest first."""
        return tuple(self._versions)

    @property
    def latest(self) -> ScriptVersion | None:
        return self._versions[-1] if self._versions else None

    def get(self, number: int) -> ScriptVersion:
        if isinstance(number, int) and 1 <= number <= len(self._versions):
            return self._versions[number - 1]
        raise NotFoundError(f"script '{self.name}' has no version {number}")

    def by_hash(self, content_hash: str) -> ScriptVersion:
        """The newest version with this content hash."""
        for v in reversed(self._versions):
            if v.content_hash == content_hash:
                return v
        raise NotFoundError(f"script '{self.name}' has no version with hash {content_hash}")

    def save(self, content: ScriptVersion) -> tuple[ScriptVersion, bool]:
        """Save ``content`` (its ``version`` is ignored).

        Returns the latest version and whether it was created: identical
        content (same hash as the latest) creates nothing; changed content
        becomes version N+1. Older versions are kept unchanged.
        """
        if content.name != self.name:
            raise ValidationError(
                f"cannot save '{content.name}' into script '{self.name}'", field="name"
            )
        latest = self.latest
        if latest is not None and latest.same_content(content):
            return latest, False
        created = dataclasses.replace(content, version=len(self._versions) + 1)
        self._versions.append(created)
        return created, True

    def restore(self, number: int) -> tuple[ScriptVersion, bool]:
        """Make version ``number``'s content the newest (N+1), as :meth:`save` would."""
        return self.save(self.get(number))
