"""Host names: the rule every host created, renamed or imported through the server obeys.

A host name is a DNS-style name (RFC 1123) with one widening: ``_`` is
allowed. Names are inventory aliases (``db_primary`` from an Ansible
inventory or an ssh_config ``Host`` line), not only resolvable names, and
underscores appear in both; they are harmless in a URL path, a header value
or a selector. Everything else stays out: no spaces, control characters,
quotes, ``/``, ``:`` or selector syntax (``* ? [ ] , & ! ~ =``), so a name can
never break a log download's headers, a file name or a selector.

- 1 to 253 characters; labels separated by ``.``, each 1 to 63 characters;
- letters, digits, ``-`` and ``_``; a label neither starts nor ends with ``-``
  (a name never looks like a command-line option).

Names already stored before this rule stay readable; only new names and
renames are checked.
"""

from __future__ import annotations

import re
from typing import Final

from muster.errors import ValidationError

__all__ = ["MAX_HOST_NAME", "check_host_name", "host_name_problem"]

MAX_HOST_NAME: Final = 253
_MAX_LABEL: Final = 63
_LABEL: Final = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?")


def host_name_problem(name: str) -> str | None:
    """Why ``name`` is not an acceptable host name, or None when it is."""
    if not name:
        return "a host name cannot be empty"
    if len(name) > MAX_HOST_NAME:
        return f"a host name has at most {MAX_HOST_NAME} characters (got {len(name)})"
    for label in name.split("."):
        if not label:
            return f"host name {name!r} has an empty label (two dots, or a dot at an end)"
        if len(label) > _MAX_LABEL:
            return (
                f"host name {name!r}: each dot-separated label has at most {_MAX_LABEL} characters"
            )
        if not _LABEL.fullmatch(label):
            if label.startswith("-") or label.endswith("-"):
                return f"host name {name!r}: a label cannot start or end with '-'"
            return f"host name {name!r}: only letters, digits, '-', '_' and '.' are allowed"
    return None


def check_host_name(name: str, field: str = "name") -> str:
    """``name`` unchanged, or ValidationError naming the bad name and ``field``."""
    problem = host_name_problem(name)
    if problem is not None:
        raise ValidationError(problem, field=field)
    return name
