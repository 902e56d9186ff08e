"""Jinja2 in inventory variables, rendered only in Jinja2's sandbox.

Inventories written for Ansible put expressions in connection variables
(``ansible_host: "{{ inventory_hostname }}.internal"``). The text comes from
files and uploads, so it is rendered with
:class:`jinja2.sandbox.SandboxedEnvironment` (no attribute access to
internals, no unsafe calls) and :class:`jinja2.StrictUndefined` (a missing
variable is an error naming the host and the variable, never an empty
string). A variable the expression uses is itself rendered first when it is
a template; a loop between variables is an error. Results that read as a
Python literal (``"{{ 2200 + 2 }}"`` -> ``2202``) keep that type, as
Ansible's native rendering does for numbers.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from functools import lru_cache
from typing import Final

from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from muster.domain.inventory import VarValue
from muster.errors import InventoryError

__all__ = ["is_template", "render_value"]

#: A chain of variables that refer to variables stops here.
_MAX_NESTING: Final = 20
_ENV: Final = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def is_template(value: VarValue) -> bool:
    """Whether ``value`` is text with a Jinja2 expression or statement in it."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


@lru_cache(maxsize=1024)
def _compile(text: str) -> tuple[object, frozenset[str]]:
    tree = _ENV.parse(text)
    return _ENV.from_string(tree), frozenset(meta.find_undeclared_variables(tree))


def render_value(
    host: str, key: str, variables: Mapping[str, VarValue], magic: Mapping[str, object]
) -> VarValue:
    """``variables[key]`` rendered for ``host``; InventoryError naming both on failure."""
    return _render(host, key, variables, magic, ())


def _render(
    host: str,
    key: str,
    variables: Mapping[str, VarValue],
    magic: Mapping[str, object],
    path: tuple[str, ...],
) -> VarValue:
    value = variables[key]
    if not is_template(value):
        return value
    if key in path:
        loop = " -> ".join((*path, key))
        raise InventoryError(f"host {host!r}: variables refer to each other in a loop: {loop}")
    if len(path) >= _MAX_NESTING:
        raise InventoryError(f"host {host!r}: variable {key!r} nests templates too deeply")
    text = str(value)
    try:
        template, names = _compile(text)
    except TemplateError as exc:
        raise InventoryError(
            f"host {host!r}: variable {key!r} is not a valid template: {exc}"
        ) from None
    context: dict[str, object] = {}
    for name in names:
        if name in variables:
            context[name] = _render(host, name, variables, magic, (*path, key))
        elif name in magic:
            context[name] = magic[name]
    try:
        rendered = template.render(context)  # type: ignore[attr-defined]
    except TemplateError as exc:
        raise InventoryError(
            f"host {host!r}: variable {key!r} ({text!r}) cannot be rendered: {exc}"
        ) from None
    return _native(rendered)


def _native(text: str) -> VarValue:
    """Numbers and booleans back to their type; everything else stays text."""
    try:
        value = ast.literal_eval(text.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
        return text
    return value if isinstance(value, int | float | bool) else text
