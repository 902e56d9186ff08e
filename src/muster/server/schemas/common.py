"""Base models: requests forbid unknown fields so a typo is an error, not a no-op."""

from __future__ import annotations

from typing import Annotated, Final, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MAX_EVENT_ID",
    "MAX_OFFSET",
    "MAX_VERSION",
    "Request",
    "Response",
    "VersionNumber",
    "narrowed",
]

#: Every integer a client sends is bounded at the door (422 naming the field),
#: so none reaches the database too large for its column (a 500 before).
#: Version numbers and page offsets fit a 32-bit column; event ids a 64-bit one.
MAX_VERSION: Final = 2**31 - 1
MAX_OFFSET: Final = 2**31 - 1
MAX_EVENT_ID: Final = 2**63 - 1

#: A script version number in a request body.
VersionNumber = Annotated[int, Field(ge=1, le=MAX_VERSION)]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)


R = TypeVar("R", bound=Response)


def narrowed(kind: type[R], full: BaseModel) -> R:
    """``full`` cut down to the fields ``kind`` declares (a list item from a full view)."""
    return kind.model_validate(full.model_dump(include=set(kind.model_fields)))
