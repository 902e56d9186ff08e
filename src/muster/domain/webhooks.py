"""A registered webhook as the delivery loop sees it (pure data)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WebhookTarget"]


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    id: str
    url: str
    secret: str
    events: tuple[str, ...]

    def wants(self, event: str) -> bool:
        return "*" in self.events or event.split(".", 1)[0] in self.events
