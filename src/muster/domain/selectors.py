"""Selectors: Ansible's host-pattern language, plus ``key=value`` label terms.

A pattern is a list of terms separated by ``,`` or ``:`` (a ``:`` inside
``[...]`` does not separate). A term is one of:

- ``all`` or ``*``: every host in the inventory;
- a host or group name; a glob (``web*``, ``db-?``, ``web[ab]``) matched
  against group names *and* host names, like Ansible;
- ``~regex``: a regular expression matched at the start of group and host
  names (Python ``re.match``, as Ansible does);
- ``key=value`` / ``key!=value``: hosts whose label ``key`` (or, when no
  such label exists, host variable ``key``) equals (or differs from) the
  value; the value may be a glob (``env=prod*``) but cannot hold ``,`` or
  ``:``, which separate terms;
- any of the above with a subscript, ``web[0]``, ``web[-1]``, ``web[1:3]``
  (inclusive), picking from that term's hosts in inventory order. As in
  Ansible a bracketed number is always a subscript, never a glob class.

A term prefixed ``&`` intersects and ``!`` excludes. As in Ansible the
terms are evaluated unions first, then intersections, then exclusions,
whatever order they were written in; a pattern made only of ``&``/``!``
terms starts from ``all``. The result is in inventory order, without
duplicates.

``localhost`` (and ``127.0.0.1``) named in a pattern when the inventory has
no such host yields an implicit local host (Ansible's implicit localhost);
``all`` and ``*`` never include it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Final

from muster.domain.hosts import Host, TransportKind
from muster.domain.inventory import ALL_GROUP, Inventory
from muster.errors import SelectorError

__all__ = ["IMPLICIT_LOCALHOSTS", "select", "split_pattern"]

#: Names that mean "this machine" when the inventory does not define them.
IMPLICIT_LOCALHOSTS: Final = ("localhost", "127.0.0.1")

_TERM_RE: Final = re.compile(r"(?:[^:\[\]]|\[[^\]]*\])+")
_SUBSCRIPT_RE: Final = re.compile(r"(.+?)\[(?:(-?\d+)|(\d*):(\d*))\]")
_GLOB_CHARS: Final = frozenset("*?[")
_LABEL_RE: Final = re.compile(r"([^=]*?)\s*(!?=)\s*(.*)")
_REGEX_START_RE: Final = re.compile(r"(?:^|:)\s*([&!]?\s*~)")


def split_pattern(pattern: str) -> list[str]:
    """The terms of a pattern, ``&``/``!`` prefixes kept; SelectorError when malformed.

    A ``~regex`` term runs to the next ``,`` so that it may hold ``:``.
    """
    if not pattern.strip():
        raise SelectorError("empty selector", field="selector")
    terms: list[str] = []
    for chunk in pattern.split(","):
        regex = _REGEX_START_RE.search(chunk)
        if regex is not None:
            if chunk[: regex.start(1)].strip():
                terms.extend(_split_colons(chunk[: regex.start()], pattern))
            terms.append(chunk[regex.start(1) :])
        else:
            terms.extend(_split_colons(chunk, pattern))
    cleaned: list[str] = []
    for term in terms:
        term = term.strip()
        body = term[1:].strip() if term[:1] in ("&", "!") else term
        if not body or body == "~":
            raise SelectorError(f"selector {pattern!r} has an empty term", field="selector")
        if body[0] in "&!":
            raise SelectorError(
                f"selector {pattern!r}: term {term!r} has two operators", field="selector"
            )
        cleaned.append(term[0] + body if term[0] in "&!" else body)
    return cleaned


def _split_colons(chunk: str, pattern: str) -> list[str]:
    """Split on ':' outside brackets (``web[1:3]`` is one term)."""
    terms: list[str] = []
    current: list[str] = []
    depth = 0
    for char in chunk:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                break
        if char == ":" and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth != 0:
        raise SelectorError(f"selector {pattern!r} has unbalanced brackets", field="selector")
    terms.append("".join(current))
    return terms


def select(inventory: Inventory, pattern: str) -> list[Host]:
    """The hosts ``pattern`` picks, in inventory order; [] when it matches nothing."""
    terms = split_pattern(pattern)
    unions = [t for t in terms if t[0] not in "&!"]
    intersections = [t[1:].strip() for t in terms if t[0] == "&"]
    exclusions = [t[1:].strip() for t in terms if t[0] == "!"]
    matcher = _Matcher(inventory)
    chosen: set[str] = set()
    implicit: dict[str, Host] = {}
    for term in unions or [ALL_GROUP]:
        names, local = matcher.match(term)
        chosen.update(names)
        if local is not None:
            implicit.setdefault(local.name, local)
    for term in intersections:
        names, local = matcher.match(term)
        chosen &= set(names)
        implicit = {k: v for k, v in implicit.items() if local is not None and local.name == k}
    for term in exclusions:
        names, local = matcher.match(term)
        chosen -= set(names)
        if local is not None:
            implicit.pop(local.name, None)
    hosts = [h for h in inventory.all_hosts() if h.name in chosen]
    return hosts + list(implicit.values())


class _Matcher:
    """Matches one term; caches the resolved hosts and group membership."""

    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory
        self._order = inventory.host_names()
        self._groups = inventory.groups

    def match(self, term: str) -> tuple[list[str], Host | None]:
        """Host names the term picks (inventory order) and an implicit localhost."""
        base, pick = _subscript(term)
        names = self._names(base)
        if pick is not None:
            names = pick(names)
        implicit: Host | None = None
        if not names and base in IMPLICIT_LOCALHOSTS and pick is None:
            implicit = Host(name=base, transport=TransportKind.LOCAL)
        return names, implicit

    def _names(self, term: str) -> list[str]:
        if term in (ALL_GROUP, "*"):
            return list(self._order)
        label = None if term.startswith("~") else _LABEL_RE.fullmatch(term)
        if label is not None:
            return self._by_label(label.group(1).strip(), label.group(2), label.group(3))
        test = _compile(term)
        special = term.startswith("~") or any(c in _GLOB_CHARS or c == "." for c in term)
        found: set[str] = set()
        groups = [g for g in self._groups if test(g)]
        for group in groups:
            found.update(self._inventory.group_members(group))
        if not groups or special:
            found.update(h for h in self._order if test(h))
        return [h for h in self._order if h in found]

    def _by_label(self, key: str, op: str, value: str) -> list[str]:
        if not key:
            raise SelectorError("a label term needs a key before '='", field="selector")
        glob = any(c in _GLOB_CHARS for c in value)
        picked: list[str] = []
        for host in self._inventory.all_hosts():
            have = host.labels.get(key, host.vars.get(key))
            equal = have is not None and (fnmatchcase(have, value) if glob else have == value)
            if equal == (op == "="):
                picked.append(host.name)
        return picked


def _compile(term: str) -> Callable[[str], bool]:
    if term.startswith("~"):
        try:
            regex = re.compile(term[1:])
        except re.error as exc:
            raise SelectorError(f"invalid regex {term!r}: {exc}", field="selector") from None
        return lambda name: regex.match(name) is not None
    if any(c in _GLOB_CHARS for c in term):
        return lambda name: fnmatchcase(name, term)
    return lambda name: name == term


def _subscript(term: str) -> tuple[str, Callable[[list[str]], list[str]] | None]:
    """Split ``web[1:3]`` into ``web`` and a picker; glob classes like ``[ab]`` stay."""
    if term.startswith("~"):
        return term, None
    match = _SUBSCRIPT_RE.fullmatch(term)
    if match is None:
        return term, None
    base, index, start, end = match.groups()
    if index is not None:
        i = int(index)
        return base, lambda names: [names[i]] if -len(names) <= i < len(names) else []
    first = int(start) if start else 0
    last = int(end) if end else None
    if last is not None and last < first:
        raise SelectorError(f"subscript in {term!r}: end is before start", field="selector")
    return base, lambda names: names[first : None if last is None else last + 1]
