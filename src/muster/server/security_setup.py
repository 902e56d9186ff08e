"""One call that puts identity and safety on an app: ``install_security(app)``.

Adds the auth middleware (401/403/CSRF/generic audit), the 401 error
handler, and the identity and approval routers. Call it in ``create_app``
after the other routers are included and before the app starts.
"""

from __future__ import annotations

from fastapi import FastAPI

from muster.server import approvals, security_routes
from muster.server.auth import install_auth

__all__ = ["install_security"]


def install_security(app: FastAPI) -> None:
    install_auth(app)
    app.include_router(security_routes.router)
    app.include_router(approvals.router)
