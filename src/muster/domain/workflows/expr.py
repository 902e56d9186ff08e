"""The conditional steps' expression language: small, parsed, never ``eval``-ed.

Grammar (lowest precedence first)::

    expr    := or
    or      := and (("or" | "||") and)*
    and     := not (("and" | "&&") not)*
    not     := ("not" | "!") not | compare
    compare := term (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not in"
                      | "contains" | "matches") term)?
    term    := NUMBER | STRING | true | false | null | REFERENCE | "(" expr ")"

A ``REFERENCE`` is ``{{params.NAME}}`` / ``{{step_ID.FIELD}}`` (see
:mod:`.refs`), or the same without braces. Strings are quoted with ``'`` or
``"`` (backslash escapes the quote and itself).

Comparison rules, chosen so that ``{{step_X.exit_code}} == 0`` and
``{{step_X.json.ready}} == true`` read as an operator expects:

* ``==``/``!=``: two values that both read as numbers compare as numbers
  (``"0" == 0`` is true); booleans compare with booleans and with the words
  ``true``/``false``; otherwise as text; ``null`` equals only ``null``.
* ``<``, ``<=``, ``>``, ``>=``: numbers only; anything else is an
  :class:`ExpressionError` at run time (the step fails, routing to
  ``on_failure``).
* ``in``/``contains``: substring of text, or membership of a JSON list.
  ``matches``: a regular expression searched in the text (bounded length).
* Truthiness of a bare term: ``false``, ``null``, ``0``, ``""`` and the words
  ``false``/``0`` are false.

Parsing is linear and bounded (expressions over 4,000 characters or nested
deeper than 50 are refused), so a definition cannot make validation slow.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from muster.domain.workflows.model import WorkflowError
from muster.domain.workflows.refs import Reference, parse_reference

__all__ = ["Expression", "ExpressionError", "evaluate", "parse_expression"]

_MAX_LEN: Final = 4000
_MAX_DEPTH: Final = 50
_TOKEN: Final = re.compile(
    r"""\s*(?:
      (?P<ref>\{\{[^{}]*\}\})
    | (?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
    | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<op>==|!=|<=|>=|&&|\|\||[<>!()])
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*(?:\.[^\s.()=!<>&|'"]+)*)
    )""",
    re.VERBOSE,
)
_WORD_OPS: Final = {
    "and": "&&",
    "or": "||",
    "not": "!",
    "in": "in",
    "contains": "contains",
    "matches": "matches",
}
_COMPARE: Final = frozenset(
    {"==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "matches"}
)
_LITERALS: Final = {"true": True, "false": False, "null": None, "none": None}


class ExpressionError(WorkflowError):
    """An expression is malformed, or cannot be evaluated on the values it met."""


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression: ``node`` is a nested tuple tree, ``references`` what it reads."""

    text: str
    node: Any
    references: tuple[Reference, ...]


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str
    value: Any
    pos: int


def _reference(raw: str, step: str | None) -> Reference:
    try:
        return parse_reference(raw, step=step, where="condition")
    except ExpressionError:
        raise
    except WorkflowError as exc:
        raise ExpressionError(
            exc.message.removeprefix(f"step '{step}': "), step=step, field="condition"
        ) from None


def _tokens(text: str, step: str | None) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise ExpressionError(
                f"condition: unexpected text at character {pos + 1}: {text[pos : pos + 20]!r}",
                step=step,
                field="condition",
            )
        kind = m.lastgroup
        assert kind is not None
        raw = m.group(kind)
        if kind == "ref":
            out.append(_Tok("ref", _reference(raw[2:-2], step), m.start(kind)))
        elif kind == "num":
            out.append(
                _Tok("lit", float(raw) if any(c in raw for c in ".eE") else int(raw), m.start(kind))
            )
        elif kind == "str":
            out.append(_Tok("lit", re.sub(r"\\(.)", r"\1", raw[1:-1]), m.start(kind)))
        elif kind == "op":
            out.append(_Tok("op", raw, m.start(kind)))
        else:
            low = raw.lower()
            if low in _LITERALS:
                out.append(_Tok("lit", _LITERALS[low], m.start(kind)))
            elif low in _WORD_OPS:
                out.append(_Tok("op", _WORD_OPS[low], m.start(kind)))
            else:
                out.append(_Tok("ref", _reference(raw, step), m.start(kind)))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[_Tok], step: str | None) -> None:
        self.tokens = tokens
        self.i = 0
        self.step = step
        self.depth = 0

    def error(self, message: str) -> ExpressionError:
        return ExpressionError(f"condition: {message}", step=self.step, field="condition")

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take_op(self, *ops: str) -> str | None:
        tok = self.peek()
        if tok is not None and tok.kind == "op" and tok.value in ops:
            self.i += 1
            return str(tok.value)
        return None

    def parse(self) -> Any:
        node = self.or_()
        tok = self.peek()
        if tok is not None:
            raise self.error(f"unexpected {tok.value!r} at character {tok.pos + 1}")
        return node

    def or_(self) -> Any:
        node = self.and_()
        while self.take_op("||"):
            node = ("or", node, self.and_())
        return node

    def and_(self) -> Any:
        node = self.not_()
        while self.take_op("&&"):
            node = ("and", node, self.not_())
        return node

    def not_(self) -> Any:
        if self.take_op("!"):
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise self.error("nested too deeply")
            node = ("not", self.not_())
            self.depth -= 1
            return node
        return self.compare()

    def compare(self) -> Any:
        left = self.term()
        tok = self.peek()
        if (
            tok is not None
            and tok.kind == "op"
            and tok.value == "!"
            and self.i + 1 < len(self.tokens)
        ):
            nxt = self.tokens[self.i + 1]
            if nxt.kind == "op" and nxt.value == "in":
                self.i += 2
                return ("cmp", "not in", left, self.term())
        op = self.take_op(*_COMPARE)
        if op is None:
            return left
        return ("cmp", op, left, self.term())

    def term(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise self.error("ends too early")
        self.i += 1
        if tok.kind == "lit":
            return ("lit", tok.value)
        if tok.kind == "ref":
            return ("ref", tok.value)
        if tok.value == "(":
            self.depth += 1
            if self.depth > _MAX_DEPTH:
                raise self.error("nested too deeply")
            node = self.or_()
            self.depth -= 1
            if not self.take_op(")"):
                raise self.error("a '(' is not closed")
            return node
        raise self.error(f"unexpected {tok.value!r} at character {tok.pos + 1}")


def parse_expression(text: str, *, step: str | None = None) -> Expression:
    """Parse ``text`` or raise an ExpressionError naming ``step`` and the condition."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError("condition is empty", step=step, field="condition")
    if len(text) > _MAX_LEN:
        raise ExpressionError(
            f"condition is longer than {_MAX_LEN} characters", step=step, field="condition"
        )
    tokens = _tokens(text, step)
    node = _Parser(tokens, step).parse()
    refs = tuple(t.value for t in tokens if t.kind == "ref")
    return Expression(text=text, node=node, references=refs)


def _iter_refs(node: Any) -> Iterator[Reference]:
    if node[0] == "ref":
        yield node[1]
    elif node[0] in ("and", "or"):
        yield from _iter_refs(node[1])
        yield from _iter_refs(node[2])
    elif node[0] == "not":
        yield from _iter_refs(node[1])
    elif node[0] == "cmp":
        yield from _iter_refs(node[2])
        yield from _iter_refs(node[3])


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0", "null")
    return bool(value)


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return _text(a).strip().lower() == _text(b).strip().lower()
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return na == nb
    return _text(a) == _text(b)


def evaluate(expression: Expression, lookup: Callable[[Reference], Any]) -> bool:
    """The expression's truth, reading references through ``lookup``."""
    return _truthy(_eval(expression.node, lookup, expression))


def _eval(node: Any, lookup: Callable[[Reference], Any], expr: Expression) -> Any:
    kind = node[0]
    if kind == "lit":
        return node[1]
    if kind == "ref":
        return lookup(node[1])
    if kind == "not":
        return not _truthy(_eval(node[1], lookup, expr))
    if kind == "and":
        return _truthy(_eval(node[1], lookup, expr)) and _truthy(_eval(node[2], lookup, expr))
    if kind == "or":
        return _truthy(_eval(node[1], lookup, expr)) or _truthy(_eval(node[2], lookup, expr))
    op, left, right = node[1], _eval(node[2], lookup, expr), _eval(node[3], lookup, expr)
    if op == "==":
        return _equal(left, right)
    if op == "!=":
        return not _equal(left, right)
    if op in ("in", "not in", "contains"):
        hay, needle = (right, left) if op != "contains" else (left, right)
        if isinstance(hay, list):
            found = any(_equal(item, needle) for item in hay)
        else:
            found = _text(needle) in _text(hay)
        return not found if op == "not in" else found
    if op == "matches":
        pattern = _text(right)
        if len(pattern) > 500:
            raise ExpressionError(
                "condition: a pattern is longer than 500 characters", field="condition"
            )
        try:
            return re.search(pattern, _text(left)[:1_000_000]) is not None
        except re.error as exc:
            raise ExpressionError(
                f"condition: bad pattern {pattern!r}: {exc}", field="condition"
            ) from None
    na, nb = _number(left), _number(right)
    if na is None or nb is None:
        raise ExpressionError(
            f"condition {expr.text!r}: {op} needs numbers, "
            f"got {_text(left)[:40]!r} and {_text(right)[:40]!r}",
            field="condition",
        )
    return {"<": na < nb, "<=": na <= nb, ">": na > nb, ">=": na >= nb}[op]
