"""Read a script file from disk into a ScriptVersion (the CLI's ``--script``)."""

from __future__ import annotations

from pathlib import Path

from muster.domain.script_header import parse_script_header
from muster.domain.scripts import ScriptVersion, Shell
from muster.errors import ValidationError

__all__ = ["load_script_file"]

_BY_SUFFIX = {
    ".sh": Shell.SH,
    ".bash": Shell.BASH,
    ".zsh": Shell.ZSH,
    ".ksh": Shell.KSH,
    ".py": Shell.PYTHON,
    ".ps1": Shell.POWERSHELL,
    ".cmd": Shell.CMD,
    ".bat": Shell.CMD,
}


def load_script_file(
    path: Path, *, shell: str | None = None, timeout: float | None = None
) -> ScriptVersion:
    """Shell: ``--shell``, else the header, else the shebang, else the suffix, else bash.

    Parameters and timeout come from the ``# muster:`` header; an explicit
    ``timeout`` argument wins over the header.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"script {path}: cannot read it: {exc}", field="script") from exc
    header = parse_script_header(text)
    chosen = shell or header.shell or _from_shebang(text) or _BY_SUFFIX.get(path.suffix)
    try:
        resolved = Shell(chosen) if chosen else Shell.BASH
    except ValueError:
        names = ", ".join(s.value for s in Shell)
        raise ValidationError(
            f"script {path}: unknown shell {chosen!r} (one of {names})", field="shell"
        ) from None
    return ScriptVersion(
        name=path.stem,
        shell=resolved,
        body=text,
        parameters=header.parameter_specs(),
        timeout=timeout if timeout is not None else (header.timeout or 300),
        requires_approval=header.requires_approval,
        idempotent=header.idempotent,
        description=header.description or "",
    )


def _from_shebang(text: str) -> str | None:
    if not text.startswith("#!"):
        return None
    words = text.splitlines()[0][2:].split()
    if not words:
        return None
    prog = words[1] if Path(words[0]).name == "env" and len(words) > 1 else words[0]
    name = Path(prog).name
    if name.startswith("python"):
        return Shell.PYTHON.value
    return name if name in {s.value for s in Shell} else None
