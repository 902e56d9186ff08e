"""Find ``${name}`` placeholders in a script and the context each stands in.

Quoting a value as one literal word is only correct where the shell expects
a word: inside a double-quoted string, a here-document or a comment the
same text would be read differently (a ``"`` in the value would close the
author's string). So before substituting we lex the script, just enough to
know for each placeholder whether it sits in plain code, inside a quoted
string, in a comment, or somewhere we do not model precisely. The lexers
are conservative: whenever they are not sure, they report a *nested*
context, for which render uses an environment-variable reference; such a
reference is never re-parsed by the shell, so it cannot change the command
whatever the value holds.

An escaped placeholder (``\\${name}`` in POSIX shells, ```${name}`` in
PowerShell) is literal text in the shell and is not reported.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final

from muster.domain.scripts import Shell

__all__ = ["PLACEHOLDER", "Context", "Site", "find_sites"]

#: ``${name}`` where name is a parameter-shaped identifier.
PLACEHOLDER: Final = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Context(enum.Enum):
    #: Plain code, certain: a quoted literal word goes here.
    WORD = "word"
    #: Directly inside a double-quoted string, certain.
    DQUOTE = "dquote"
    #: Directly inside a single-quoted string, certain.
    SQUOTE = "squote"
    #: Code inside a nesting we track loosely (command substitution,
    #: backquotes, parameter expansion) or after something we could not
    #: follow: only a quoted variable reference is safe here.
    NESTED_CODE = "nested_code"
    #: Text where the shell expands variables but does not re-parse them
    #: (a double quote inside a nesting, an unquoted here-document).
    NESTED_EXPANDING = "nested_expanding"
    #: A single-quoted string inside a nesting.
    NESTED_SQUOTE = "nested_squote"
    #: Arithmetic: only numbers may be written here.
    ARITH = "arith"
    #: A comment: left untouched.
    COMMENT = "comment"
    #: Text that is never expanded and has no safe form (a quoted
    #: here-document, a Python string, ANSI-C quoting): substitution refused.
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Site:
    start: int
    end: int
    name: str
    context: Context
    line: int


def find_sites(text: str, shell: Shell) -> list[Site]:
    """Every placeholder of ``text`` with its context, in order."""
    shell = Shell(shell)
    if shell.is_posix:
        return _Posix(text).run()
    if shell is Shell.PYTHON:
        return _python(text)
    if shell is Shell.POWERSHELL:
        return _powershell(text)
    return _cmd(text)


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


_WORD_BREAK: Final = frozenset(" \t\n;&|()<>")
_SPECIAL_PARAMS: Final = frozenset("#?$!@*-0123456789")


class _Posix:
    """A small lexer for bash/sh/zsh/ksh. Frames: dq, cmd ($(...)), bt
    (backquotes), param (${...}), arith ($((...)), ((...)))."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sites: list[Site] = []
        self.stack: list[list[str | int]] = []  # [kind, depth]
        self.pending: list[tuple[str, bool, bool]] = []  # here-docs: delim, quoted, strip tabs
        self.uncertain = False

    def add(self, match: re.Match[str], context: Context) -> int:
        if self.uncertain and context not in (Context.COMMENT, Context.REFUSED, Context.ARITH):
            context = Context.NESTED_CODE if context is Context.WORD else context
            if context is Context.DQUOTE:
                context = Context.NESTED_EXPANDING
            elif context is Context.SQUOTE:
                context = Context.NESTED_SQUOTE
        line = _line(self.text, match.start())
        self.sites.append(Site(match.start(), match.end(), match.group(1), context, line))
        return match.end()

    def kind(self) -> str | None:
        return str(self.stack[-1][0]) if self.stack else None

    def context(self, quote: str = "") -> Context:
        kind = self.kind()
        if kind == "arith":
            return Context.ARITH
        nested = any(frame[0] != "dq" for frame in self.stack) or len(self.stack) > 1
        if quote == "'":
            return Context.NESTED_SQUOTE if nested else Context.SQUOTE
        if kind == "dq":
            return Context.NESTED_EXPANDING if nested else Context.DQUOTE
        if kind == "param":
            return Context.NESTED_EXPANDING
        return Context.NESTED_CODE if nested else Context.WORD

    def run(self) -> list[Site]:
        n, i = len(self.text), 0
        while i < n:
            i = self.step(i)
        return self.sites

    def step(self, i: int) -> int:
        text = self.text
        c = text[i]
        kind = self.kind()
        if c == "\\":
            return i + 2
        if c == "$":
            return self.dollar(i)
        if kind == "dq":
            if c == '"':
                self.stack.pop()
            elif c == "`":
                self.uncertain = True
                self.stack.append(["bt", 0])
            return i + 1
        if kind == "param":
            if c in "'\"":
                if len(self.stack) > 1 and self.stack[-2][0] == "dq":
                    # Quotes in ${...} within "..." differ between shells.
                    self.uncertain = True
                elif c == "'":
                    return self.single_quoted(i + 1, Context.NESTED_SQUOTE)
                else:
                    self.stack.append(["dq", 0])
            elif c == "{":
                self.stack[-1][1] = int(self.stack[-1][1]) + 1
            elif c == "}":
                self.stack[-1][1] = int(self.stack[-1][1]) - 1
                if int(self.stack[-1][1]) <= 0:
                    self.stack.pop()
            return i + 1
        if kind == "arith":
            if c == "(":
                self.stack[-1][1] = int(self.stack[-1][1]) + 1
            elif c == ")":
                if int(self.stack[-1][1]) == 0 and text.startswith("))", i):
                    self.stack.pop()
                    return i + 2
                self.stack[-1][1] = int(self.stack[-1][1]) - 1
            return i + 1
        # Code: top level, $(...) or backquotes.
        if c == "'":
            return self.single_quoted(i + 1, self.context("'"))
        if c == '"':
            self.stack.append(["dq", 0])
            return i + 1
        if c == "`":
            # Backquotes re-parse their text after removing backslashes, and
            # nest with quotes in ways we do not follow: references only.
            self.uncertain = True
            if kind == "bt":
                self.stack.pop()
            else:
                self.stack.append(["bt", 0])
            return i + 1
        if c == "#" and (i == 0 or text[i - 1] in _WORD_BREAK):
            end = text.find("\n", i)
            end = len(text) if end < 0 else end
            for m in PLACEHOLDER.finditer(text, i, end):
                self.add(m, Context.COMMENT)
            return end
        if c == "(" and text.startswith("((", i) and (i == 0 or text[i - 1] in _WORD_BREAK):
            self.stack.append(["arith", 0])
            return i + 2
        if kind == "cmd":
            if c == "(":
                self.stack[-1][1] = int(self.stack[-1][1]) + 1
            elif c == ")":
                if int(self.stack[-1][1]) == 0:
                    self.stack.pop()
                else:
                    self.stack[-1][1] = int(self.stack[-1][1]) - 1
            elif text.startswith("case", i) and (i == 0 or text[i - 1] in _WORD_BREAK):
                # A case pattern's ")" would end $(...) early in our count.
                self.uncertain = True
        if c == "<" and text.startswith("<<", i) and not text.startswith("<<<", i):
            return self.heredoc_operator(i + 2)
        if c == "\n" and self.pending:
            return self.heredoc_bodies(i + 1)
        return i + 1

    def dollar(self, i: int) -> int:
        text = self.text
        m = PLACEHOLDER.match(text, i)
        if m:
            return self.add(m, self.context())
        nxt = text[i + 1 : i + 2]
        if text.startswith("$((", i):
            self.stack.append(["arith", 0])
            return i + 3
        if nxt == "(":
            self.stack.append(["cmd", 0])
            return i + 2
        if nxt == "{":
            self.stack.append(["param", 1])
            return i + 2
        if nxt == "'" and self.kind() != "dq":
            return self.single_quoted(i + 2, Context.REFUSED, ansi_c=True)
        if nxt and nxt in _SPECIAL_PARAMS:
            return i + 2
        return i + 1

    def single_quoted(self, i: int, context: Context, *, ansi_c: bool = False) -> int:
        text, n = self.text, len(self.text)
        start = i
        while i < n and text[i] != "'":
            i += 2 if ansi_c and text[i] == "\\" else 1
        for m in PLACEHOLDER.finditer(text, start, min(i, n)):
            self.add(m, context)
        return i + 1

    def heredoc_operator(self, i: int) -> int:
        text, n = self.text, len(self.text)
        strip = text.startswith("-", i)
        i += 1 if strip else 0
        while i < n and text[i] in " \t":
            i += 1
        delim: list[str] = []
        quoted = False
        while i < n and text[i] not in _WORD_BREAK:
            c = text[i]
            if c in "'\"":
                quoted = True
                end = text.find(c, i + 1)
                end = n if end < 0 else end
                delim.append(text[i + 1 : end])
                i = end + 1
            elif c == "\\":
                quoted = True
                delim.append(text[i + 1 : i + 2])
                i += 2
            else:
                delim.append(c)
                i += 1
        if not delim:
            self.uncertain = True
        else:
            self.pending.append(("".join(delim), quoted, strip))
        return i

    def heredoc_bodies(self, i: int) -> int:
        text, n = self.text, len(self.text)
        for delim, quoted, strip in self.pending:
            while i < n:
                end = text.find("\n", i)
                end = n if end < 0 else end
                line = text[i:end]
                if (line.lstrip("\t") if strip else line) == delim:
                    i = end + 1
                    break
                j = i
                while True:
                    m = PLACEHOLDER.search(text, j, end)
                    if m is None:
                        break
                    escaped = not quoted and _backslashes_before(text, m.start()) % 2 == 1
                    if not escaped:
                        self.add(m, Context.REFUSED if quoted else Context.NESTED_EXPANDING)
                    j = m.end()
                i = end + 1
        self.pending.clear()
        return i


def _backslashes_before(text: str, pos: int) -> int:
    count = 0
    while pos - count - 1 >= 0 and text[pos - count - 1] == "\\":
        count += 1
    return count


_PY_STRING: Final = re.compile(r"(?i)(?:[rbuf]{0,2})('''|\"\"\"|'|\")")


def _python(text: str) -> list[Site]:
    """Python: code, string literals (refused) and comments."""
    sites: list[Site] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
            sites += _all(text, i, end, Context.COMMENT)
            i = end
            continue
        m = _PY_STRING.match(text, i)
        if m and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            quote = m.group(1)
            j = m.end()
            while j < n and not text.startswith(quote, j):
                if text[j] == "\n" and len(quote) == 1:
                    break
                j += 2 if text[j] == "\\" else 1
            sites += _all(text, m.end(), min(j, n), Context.REFUSED)
            i = j + len(quote)
            continue
        p = PLACEHOLDER.match(text, i)
        if p:
            sites.append(Site(p.start(), p.end(), p.group(1), Context.WORD, _line(text, i)))
            i = p.end()
            continue
        i += 1
    return sites


def _all(text: str, start: int, end: int, context: Context) -> list[Site]:
    return [
        Site(m.start(), m.end(), m.group(1), context, _line(text, m.start()))
        for m in PLACEHOLDER.finditer(text, start, end)
    ]


_PS_TOKEN_START: Final = frozenset(" \t\r\n;(){}|")
_PS_SQ: Final = frozenset("'\u2018\u2019\u201a\u201b")
_PS_DQ: Final = frozenset('"\u201c\u201d\u201e')


def _powershell(text: str) -> list[Site]:
    """PowerShell: code, '...' strings, "..." strings, here-strings, comments.

    Anything inside a double-quoted string or here-string is reported as
    NESTED_EXPANDING (``$(...)`` subexpressions there are not followed, and
    the reference form is safe in both).
    """
    sites: list[Site] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == "`":
            i += 2
            continue
        if text.startswith("<#", i):
            end = text.find("#>", i + 2)
            end = n if end < 0 else end + 2
            sites += _all(text, i, end, Context.COMMENT)
            i = end
            continue
        if c == "#" and (i == 0 or text[i - 1] in _PS_TOKEN_START):
            end = text.find("\n", i)
            end = n if end < 0 else end
            sites += _all(text, i, end, Context.COMMENT)
            i = end
            continue
        if c == "@" and i + 1 < n and (text[i + 1] in _PS_SQ or text[i + 1] in _PS_DQ):
            single = text[i + 1] in _PS_SQ
            closer = re.compile(r"\n[\u0027\u2018-\u201b]@" if single else r"\n[\"\u201c-\u201e]@")
            m = closer.search(text, i + 2)
            end = n if m is None else m.end()
            sites += _all(text, i, end, Context.REFUSED if single else Context.NESTED_EXPANDING)
            i = end
            continue
        if c in _PS_SQ:
            j = i + 1
            while j < n:
                if text[j] in _PS_SQ:
                    if j + 1 < n and text[j + 1] in _PS_SQ:
                        j += 2
                        continue
                    break
                j += 1
            sites += _all(text, i + 1, j, Context.SQUOTE)
            i = j + 1
            continue
        if c in _PS_DQ:
            j = i + 1
            while j < n:
                if text[j] == "`":
                    j += 2
                    continue
                if text[j] in _PS_DQ:
                    if j + 1 < n and text[j + 1] in _PS_DQ:
                        j += 2
                        continue
                    break
                j += 1
            sites += [
                s for s in _all(text, i + 1, j, Context.NESTED_EXPANDING) if not _ps_esc(text, s)
            ]
            i = j + 1
            continue
        p = PLACEHOLDER.match(text, i)
        if p:
            sites.append(Site(p.start(), p.end(), p.group(1), Context.WORD, _line(text, i)))
            i = p.end()
            continue
        i += 1
    return sites


def _ps_esc(text: str, site: Site) -> bool:
    count = 0
    while site.start - count - 1 >= 0 and text[site.start - count - 1] == "`":
        count += 1
    return count % 2 == 1


_CMD_COMMENT: Final = re.compile(r"[ \t@]*(?:rem(?:[ \t]|$)|::)", re.IGNORECASE)


def _cmd(text: str) -> list[Site]:
    """cmd: per line, inside or outside double quotes; ``rem``/``::`` comments."""
    sites: list[Site] = []
    pos, in_quotes = 0, False
    for number, line in enumerate(text.split("\n"), start=1):
        if not in_quotes and _CMD_COMMENT.match(line):
            sites += _all(text, pos, pos + len(line), Context.COMMENT)
            pos += len(line) + 1
            continue
        i, n = 0, len(line)
        while i < n:
            c = line[i]
            if c == "^" and not in_quotes:
                i += 2
                continue
            if c == '"':
                in_quotes = not in_quotes
                i += 1
                continue
            p = PLACEHOLDER.match(line, i)
            if p:
                context = Context.DQUOTE if in_quotes else Context.WORD
                sites.append(Site(pos + i, pos + p.end(), p.group(1), context, number))
                i = p.end()
                continue
            i += 1
        # A line ends a quoted span unless it continues with a trailing caret.
        if not line.rstrip("\r").endswith("^") or in_quotes:
            in_quotes = False
        pos += len(line) + 1
    return sites
