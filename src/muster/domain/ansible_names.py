"""Host names as Ansible reads them: addresses with ports, and ``[x:y]`` ranges.

Two places need the same grammar: inventory files (``web[01:03]:2222``,
``[fe80::1]:22``) and host patterns (without a comma, a pattern that reads as
one address is one term, so ``::1`` and ``web:22`` are not split on ``:``).
The rules below are Ansible's (ansible-core 2.19), written out here:

- an address is an IPv4 address, an IPv6 address or a DNS-like host name
  (labels of word characters and ``-``, not ending in ``-`` or ``_``); any
  part may be a range (numeric in IPv4, hexadecimal in IPv6, a number or
  one letter in a name);
- a ``:port`` follows an IPv4 address or a name; an IPv6 address takes a
  port only inside brackets, ``[fe80::1]:22``;
- text that is not an address keeps its ``:port`` as part of the name.

Ranges: ``[start:end]`` or ``[start:end:step]``; an empty start is 0;
a start written with a leading zero fixes the width, and the end must then
have the same width; letters run through ``a..z`` then ``A..Z``; a start
after the end gives no names for numbers and is an error for letters.
Pure: no I/O.
"""

from __future__ import annotations

import re
import string
from typing import Final

__all__ = [
    "MAX_EXPANSION",
    "expand_host_pattern",
    "host_pattern_size",
    "parse_address",
    "split_host_port",
]

#: One host pattern may name at most this many hosts.
MAX_EXPANSION: Final = 100_000

_NUM_RANGE: Final = r"\[[0-9]+:[0-9]+(?::[0-9]+)?\]"
_HEX_RANGE: Final = r"\[[0-9a-f]+:[0-9a-f]+(?::[0-9]+)?\]"
_NAME_RANGE: Final = r"\[(?:[a-z]:[a-z]|[0-9]+:[0-9]+)(?::[0-9]+)?\]"
_V4_PART: Final = rf"(?:[01]?[0-9]{{1,2}}|2[0-4][0-9]|25[0-5]|{_NUM_RANGE})"
_V6_PART: Final = rf"(?:[0-9a-f]{{1,4}}|{_HEX_RANGE})"
_LABEL: Final = rf"(?:\w|{_NAME_RANGE})(?:[\w-]|{_NAME_RANGE})*(?<![_-])"

_BRACKETED_PORT_RE: Final = re.compile(r"\[(.+)\]:([0-9]+)")
_PORT_RE: Final = re.compile(r"((?:[^:\[\]]|\[[^\]]*\])*):([0-9]+)")
_IPV4_RE: Final = re.compile(rf"(?:{_V4_PART}\.){{3}}{_V4_PART}", re.I)
_IPV6_RE: Final = re.compile(
    "|".join(
        s.replace("P", _V6_PART)
        for s in (
            r"(?:P:){7}P",
            r"(?:P:){1,6}:",
            r"(?:P:)(?::P){1,6}",
            r"(?:P:){2}(?::P){1,5}",
            r"(?:P:){3}(?::P){1,4}",
            r"(?:P:){4}(?::P){1,3}",
            r"(?:P:){5}(?::P){1,2}",
            r"(?:P:){6}(?::P)",
            r":(?::P){1,6}",
            r"P?::",
            r"(?:0:){6}(?:P\.){3}P",
            r"::(?:ffff:)?(?:P\.){3}P",
            r"(?:0:){5}ffff:(?:P\.){3}P",
        )
    ),
    re.I,
)
_HOSTNAME_RE: Final = re.compile(rf"{_LABEL}(?:\.{_LABEL})*", re.I)


def parse_address(text: str, *, allow_ranges: bool = False) -> tuple[str, int | None]:
    """``(host, port)`` when ``text`` is an address with an optional port; ValueError if not.

    The two port forms are tried in turn, the second on what the first left
    (as Ansible does), then the rest must be an IPv4 or IPv6 address or a name.
    """
    port: int | None = None
    for form in (_BRACKETED_PORT_RE, _PORT_RE):
        match = form.fullmatch(text)
        if match is not None:
            text, port = match.group(1), int(match.group(2))
    if not (_IPV4_RE.fullmatch(text) or _IPV6_RE.fullmatch(text) or _HOSTNAME_RE.fullmatch(text)):
        raise ValueError(f"not a valid network host name: {text}")
    if not allow_ranges and "[" in text:
        raise ValueError(f"a range in {text!r} where none is allowed")
    return text, port


def split_host_port(pattern: str) -> tuple[str, int | None]:
    """An inventory host entry split into its name pattern and ``:port``.

    What does not read as an address stays whole, port and all.
    """
    try:
        return parse_address(pattern, allow_ranges=True)
    except ValueError:
        return pattern, None


def _range_values(spec: str, width_from: str) -> tuple[list[str] | range, int]:
    """The values of one ``[...]`` range (letters as a list, numbers as a range) and
    the zero-padding width (0: none)."""
    bounds = spec.split(":")
    if len(bounds) not in (2, 3):
        raise ValueError(f"host range [{spec}] must be begin:end or begin:end:step")
    begin = bounds[0] or "0"
    end = bounds[1]
    step_text = bounds[2] if len(bounds) == 3 else "1"
    if not end:
        raise ValueError(f"host range [{spec}] must give an end value")
    width = 0
    if begin[0] == "0" and len(begin) > 1:
        width = len(begin)
        if len(end) != width:
            raise ValueError(
                f"host range [{spec}]: begin and end must have the same width "
                f"when begin has a leading zero ({width_from})"
            )
    letters = string.ascii_letters
    if begin in letters and end in letters and begin and end:
        first, last = letters.index(begin), letters.index(end)
        if first > last:
            raise ValueError(f"host range [{spec}] must have begin <= end")
        try:
            return list(letters[first : last + 1 : int(step_text)]), width
        except ValueError:
            pass  # a zero or bad step: read as numbers below, which fails as Ansible does
    try:
        return range(int(begin), int(end) + 1, int(step_text)), width
    except ValueError:
        raise ValueError(f"host range [{spec}]: use numbers ([01:10]) or letters ([a:f])") from None


def _pieces(pattern: str) -> list[tuple[str, list[str] | range, int]]:
    """``(text before, values, width)`` per range, left to right; the tail is appended
    as a range-less piece. ValueError for a malformed range."""
    pieces: list[tuple[str, list[str] | range, int]] = []
    rest = pattern
    while "[" in rest:
        start = rest.index("[")
        end = rest.find("]")
        if end < start:
            raise ValueError(f"unbalanced brackets in host pattern {pattern!r}")
        values, width = _range_values(rest[start + 1 : end], pattern)
        pieces.append((rest[:start], values, width))
        rest = rest[end + 1 :]
    pieces.append((rest, [""], 0))
    return pieces


def _count(values: list[str] | range) -> int:
    """len() without its limit: a range of more than sys.maxsize numbers has no len()."""
    if isinstance(values, list):
        return len(values)
    if values.step > 0:
        return max(0, (values.stop - values.start + values.step - 1) // values.step)
    return max(0, (values.start - values.stop - values.step - 1) // -values.step)


def host_pattern_size(pattern: str) -> int:
    """How many names ``pattern`` expands to, without expanding it; ValueError if malformed."""
    total = 1
    for _, values, _ in _pieces(pattern):
        total *= _count(values)
    return total


def expand_host_pattern(pattern: str) -> list[str]:
    """Every name of an inventory host pattern (``db[01:03]-[a:b]``), in Ansible's order."""
    pieces = _pieces(pattern)
    total = host_pattern_size(pattern)
    if total > MAX_EXPANSION:
        raise ValueError(f"{pattern!r} expands to {total} hosts (limit {MAX_EXPANSION})")
    names = [""]
    for head, values, width in pieces:
        texts = [str(v).zfill(width) if width else str(v) for v in values]
        names = [name + head + text for name in names for text in texts]
    return names
