"""Base models: requests forbid unknown fields so a typo is an error, not a no-op."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Request", "Response"]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid", from_attributes=True)
