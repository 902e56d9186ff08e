"""The caller of a request as a service sees it: an :class:`~muster.services.actor.Actor`.

The auth middleware has put the authenticated principal on the request; this
adds the client's address (``X-Forwarded-For`` only from trusted proxies),
so services receive plain values and never the request.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from muster.services.actor import Actor

__all__ = ["CurrentActor", "current_actor", "request_actor"]


def request_actor(request: Request) -> Actor | None:
    """The request's caller, or ``None`` if the route let an anonymous caller in."""
    # Imported here: auth needs the route table, which imports the console's pages,
    # which use this module.
    from muster.server.auth import client_address

    principal = getattr(request.state, "principal", None)
    if principal is None:
        return None
    return Actor.of(principal, client_address(request))


def current_actor(request: Request) -> Actor:
    """The authenticated caller (``AuthenticationError``, a 401, without one)."""
    from muster.server.auth import client_address, current_principal

    return Actor.of(current_principal(request), client_address(request))


CurrentActor = Annotated[Actor, Depends(current_actor)]
