"""Selectors: Ansible's host-pattern language, plus ``key=value`` label terms.

A pattern is read as Ansible 2.19 reads it:

- with a ``,`` anywhere, terms are separated by ``,`` only (``staging,web:&prod``
  is two terms, the second a name with a colon in it);
- without a comma, a pattern that reads as one address (``::1``, ``web:22``,
  ``web[1:3]``) is one term; anything else is split on ``:`` and whitespace,
  a ``[...]`` staying whole (so a ``~regex`` ends at the next ``:``);
- empty terms are skipped (``web,``, ``:web``).

A term is ``all``/``*``; a host or group name; a glob (``web*``, ``db-?``,
``web[ab]``) or a ``~regex`` (``re.match``) matched against group names and,
when no group matches or the term has ``. ? * [`` or is a regex, host
names; ``key=value`` / ``key!=value`` (muster's own: a host's label, else
variable, equal to or differing from the value, which may be a glob). A
term other than a regex may end in a subscript: ``[i]``, ``[-i]``,
``[start:end]`` (inclusive), ``[start:]``, or the old ``[start-end]``;
``[start:0]`` picks the single host ``start``, as in Ansible.

A term prefixed ``&`` intersects and ``!`` excludes; unions are evaluated
first, then intersections, then exclusions, whatever order they were written
in; a pattern of only ``&``/``!`` terms starts from ``all``. The result keeps
Ansible's order: terms in the order written, a group's hosts in the
group's order (own hosts, then its children's level by level), without
duplicates.

``localhost``, ``127.0.0.1`` and ``::1`` named in a pattern when the inventory
has no such host yield an implicit local host; ``all`` and ``*`` never
include it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fnmatch import fnmatchcase, translate
from typing import Final

from muster.domain.ansible_names import parse_address
from muster.domain.hosts import Host, TransportKind
from muster.domain.inventory import ALL_GROUP, Inventory
from muster.errors import SelectorError

__all__ = ["IMPLICIT_LOCALHOSTS", "select", "split_pattern"]

#: Names that mean "this machine" when the inventory does not define them.
IMPLICIT_LOCALHOSTS: Final = ("127.0.0.1", "localhost", "::1")

_TERM_RE: Final = re.compile(r"(?:[^\s:\[\]]|\[[^\]]*\])+")
_SUBSCRIPT_RE: Final = re.compile(r"(.+)\[(?:(-?[0-9]+)|([0-9]+)([:-])([0-9]*))\]", re.S)
_LABEL_RE: Final = re.compile(r"([^=~\[\]*?]+?)\s*(!?=)\s*(.*)", re.S)
_SPECIAL: Final = (".", "?", "*", "[")

#: A subscript: ``(index, None)`` or ``(start, end)`` with end -1 for "to the last".
_Subscript = tuple[int, int | None]


def split_pattern(pattern: str) -> list[str]:
    """The terms of a pattern, ``&``/``!`` prefixes kept; SelectorError when it has none."""
    if "," in pattern:
        parts = pattern.split(",")
    else:
        try:
            parse_address(pattern, allow_ranges=True)
            parts = [pattern]
        except ValueError:
            parts = _TERM_RE.findall(pattern)
    terms = [p.strip() for p in parts if p.strip()]
    if not terms:
        raise SelectorError(f"selector {pattern!r} names no hosts", field="selector")
    return terms


def select(inventory: Inventory, pattern: str) -> list[Host]:
    """The hosts ``pattern`` picks, in Ansible's order; [] when it matches nothing."""
    terms = split_pattern(pattern)
    unions = [t for t in terms if t[0] not in "&!"] or [ALL_GROUP]
    ordered = unions + [t for t in terms if t[0] == "&"] + [t for t in terms if t[0] == "!"]
    matcher = _Matcher(inventory)
    chosen: list[str] = []
    for term in ordered:
        if term[0] == "!":
            drop = set(matcher.match(term[1:]))
            chosen = [h for h in chosen if h not in drop]
        elif term[0] == "&":
            keep = set(matcher.match(term[1:]))
            chosen = [h for h in chosen if h in keep]
        elif term in matcher.known:
            chosen.append(term)
        else:
            chosen.extend(matcher.match(term))
    hosts: list[Host] = []
    for name in dict.fromkeys(chosen):
        if name in matcher.known:
            hosts.append(inventory.host(name))
        else:
            hosts.append(Host(name=name, transport=TransportKind.LOCAL))
    return hosts


class _Matcher:
    """Matches one term (without its ``&``/``!``); results may repeat a host, as
    Ansible's do before the end, so that subscripts count the same hosts."""

    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory
        self.known = frozenset(inventory.host_names())
        self._cache: dict[str, list[str]] = {}
        self.local: str | None = None

    def match(self, term: str) -> list[str]:
        if not term:
            raise SelectorError("an '&' or '!' needs a pattern after it", field="selector")
        if term not in self._cache:
            base, subscript = _split_subscript(term)
            names = self._enumerate(base)
            self._cache[term] = _apply_subscript(names, subscript, term)
        return self._cache[term]

    def _enumerate(self, term: str) -> list[str]:
        label = None if term.startswith("~") else _LABEL_RE.fullmatch(term)
        if label is not None:
            return self._by_label(label.group(1).strip(), label.group(2), label.group(3))
        test = _compile(term)
        found: list[str] = []
        groups = [g for g in self._inventory.groups if test(g)]
        for group in groups:
            found.extend(self._inventory.group_members(group))
        if not groups or term[0] == "~" or any(c in term for c in _SPECIAL):
            found.extend(h for h in self._inventory.host_names() if test(h))
        if not found and term in IMPLICIT_LOCALHOSTS:
            found.append(self._localhost(term))
        return found

    def _localhost(self, term: str) -> str:
        """Ansible's one localhost: the inventory's first localhost-like host, else an
        implicit one named by the first term that asked for it."""
        if self.local is None:
            defined = [h for h in self._inventory.host_names() if h in IMPLICIT_LOCALHOSTS]
            self.local = defined[0] if defined else term
        return self.local

    def _by_label(self, key: str, op: str, value: str) -> list[str]:
        glob = any(c in "*?[" for c in value)
        picked: list[str] = []
        for host in self._inventory.all_hosts():
            have = host.labels.get(key, host.vars.get(key))
            equal = have is not None and (fnmatchcase(have, value) if glob else have == value)
            if equal == (op == "="):
                picked.append(host.name)
        return picked


def _compile(term: str) -> Callable[[str], bool]:
    try:
        regex = re.compile(term[1:] if term.startswith("~") else translate(term))
    except re.error as exc:
        raise SelectorError(f"invalid host pattern {term!r}: {exc}", field="selector") from None
    return lambda name: regex.match(name) is not None


def _split_subscript(term: str) -> tuple[str, _Subscript | None]:
    """``web[1:3]`` -> ``("web", (1, 3))``; a regex never has a subscript."""
    if term.startswith("~"):
        return term, None
    match = _SUBSCRIPT_RE.fullmatch(term)
    if match is None:
        return term, None
    base, index, start, _sep, end = match.groups()
    if index is not None:
        return base, (int(index), None)
    return base, (int(start), int(end) if end else -1)


def _apply_subscript(names: list[str], subscript: _Subscript | None, term: str) -> list[str]:
    if not names or subscript is None:
        return names
    start, end = subscript
    if end:  # as in Ansible, an end of 0 picks the single host at ``start``
        stop = len(names) if end == -1 else end + 1
        return names[start:stop]
    if -len(names) <= start < len(names):
        return [names[start]]
    # Ansible stops here too (a playbook fails; ``ansible`` reports the error and
    # targets nothing): the pattern does not mean what its author thought.
    raise SelectorError(
        f"no hosts matched the subscripted pattern {term!r} "
        f"(it matches {len(dict.fromkeys(names))} host(s))",
        field="selector",
    )
