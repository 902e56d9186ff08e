"""Small helpers the operator pages share: form fields, API models, the caller, notices.

The operator pages (hosts, administration, approvals, commands) call the
same handlers and services as the JSON API. A form is turned into the API's
own request model with :func:`api_model`, so a bad value is refused with the
API's rule and named by its field, as a :class:`~muster.errors.ValidationError`
the console's error route renders beside the form.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError

from muster.errors import AuthenticationError, ValidationError
from muster.security.rbac import Principal
from muster.server.redirects import safe_next

__all__ = [
    "Form",
    "api_model",
    "back_to",
    "caller",
    "checked_notice",
    "field",
    "lines",
    "notice_redirect",
    "words",
]

M = TypeVar("M", bound=BaseModel)
Form = Mapping[str, list[str]]


def field(form: Form, name: str, default: str = "") -> str:
    """One form value, stripped; ``default`` when absent."""
    values = form.get(name)
    return values[0].strip() if values else default


def words(text: str) -> list[str]:
    """Comma- or space-separated words, empty ones dropped."""
    return [w for w in text.replace(",", " ").split() if w]


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def api_model(model: type[M], data: Mapping[str, Any]) -> M:
    """``model`` from form data, its problems as one ``ValidationError`` naming each field."""
    try:
        return model.model_validate(dict(data))
    except PydanticValidationError as exc:
        problems = {
            ".".join(str(p) for p in e["loc"]) or "form": str(e["msg"]).removeprefix(
                "Value error, "
            )
            for e in exc.errors()
        }
        summary = "; ".join(f"{k}: {v}" for k, v in problems.items())
        raise ValidationError(summary, problems=problems) from None


def caller(request: Request) -> Principal:
    """The authenticated caller (the auth middleware put it there)."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        raise AuthenticationError("authentication required")
    return principal  # type: ignore[no-any-return]


def back_to(form: Form, default: str) -> str:
    """The form's ``next`` path when it stays on this site, else ``default``."""
    return safe_next(field(form, "next"), default)


#: Signs notices for this process's life: a link made elsewhere cannot put words in the
#: console's green banner (a notice from another process is simply not shown).
_NOTICE_KEY = os.urandom(32)


def _notice_sig(notice: str) -> str:
    return hmac.new(_NOTICE_KEY, notice.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def notice_redirect(path: str, notice: str) -> RedirectResponse:
    """After a change: back to ``path`` with a one-line notice the page shows."""
    sep = "&" if "?" in path else "?"
    return RedirectResponse(
        f"{path}{sep}done={quote(notice)}&ds={_notice_sig(notice)}", status_code=303
    )


def checked_notice(request: Request) -> str:
    """The ``done`` notice of the address, if this server signed it (else "")."""
    notice = request.query_params.get("done", "")
    sig = request.query_params.get("ds", "")
    if notice and hmac.compare_digest(sig, _notice_sig(notice)):
        return notice
    return ""
