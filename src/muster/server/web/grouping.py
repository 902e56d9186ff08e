"""The console's result groups: the one rule lives in :mod:`muster.domain.result_groups`
(the CLI's ``--output grouped`` uses it too); the server feeds it
:class:`~muster.store.base.RunDigest` rows read from the store."""

from __future__ import annotations

from muster.domain.result_groups import ResultGroup, group_key, group_results

__all__ = ["ResultGroup", "group_key", "group_results"]
