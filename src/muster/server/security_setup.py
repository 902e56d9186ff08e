"""One call that puts identity and safety on an app: ``install_security(app)``.

Adds the auth middleware (401/403/CSRF/generic audit), the 401 error
handler, the browser-protection headers, and the identity, approval and
credential routers. ``create_app``
calls it after the other routers are included; the lifespan calls
:func:`announce_bootstrap` once the store is open. (Approval deadlines pass
into rejection in the reaper loop, :class:`muster.services.reaper.Reaper`.)
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from muster.server import approval_policies, approvals, credentials, security_routes
from muster.server.auth import install_auth, security_store
from muster.server.headers import SecurityHeaders
from muster.server.input_guard import NulGuard

__all__ = ["announce_bootstrap", "bootstrap_message", "install_security"]


def install_security(app: FastAPI) -> None:
    install_auth(app)
    # Added last, so it runs first: a NUL is refused before anything reads the request.
    app.add_middleware(NulGuard)
    # Outermost of all: even the refusals above carry the browser protections.
    app.add_middleware(SecurityHeaders)
    app.include_router(security_routes.router)
    app.include_router(approvals.router)
    app.include_router(credentials.router)
    app.include_router(approval_policies.router)
    app.include_router(approval_policies.policies_router)


def bootstrap_message(password: str, name: str = "admin") -> str:
    return (
        "\n"
        "  First start: created user '" + name + "' with a one-time password (shown once):\n"
        "\n"
        "      " + password + "\n"
        "\n"
        "  Log in with it and change it; or make your own admin with\n"
        "  `muster user create NAME --admin`. Get a CLI token with `muster login --url URL`.\n"
    )


async def announce_bootstrap(app: Any, out: TextIO | None = None) -> str | None:
    """Create the first admin on an empty user table and print its password once.

    The password goes to the terminal (stderr), never to the log. Returns it
    (for the caller that wants to show it elsewhere), or ``None`` when users exist.
    """
    secret = await run_in_threadpool(security_store(app).bootstrap_admin)
    if secret is None:
        return None
    stream = out if out is not None else sys.stderr
    stream.write(bootstrap_message(secret.reveal()))
    stream.flush()
    return secret.reveal()
