"""Turn a :class:`~muster.engine.rollout_result.RolloutRun` into a publishable report.

The report (format :data:`~muster.domain.rollout_report.REPORT_FORMAT`) is
``RolloutRun.to_dict()`` plus what a reader of the rollout view needs without
recomputing it (:func:`~muster.domain.rollout_report.host_entries`): each host's
wave, state and reason, its rollback outcome, whether it is flagged, and its
evidence from every verification. Secret
parameter values are masked in every string before the document leaves the
process (the server masks again on publish).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from muster.domain.params import ParameterType
from muster.domain.rollout_report import REPORT_FORMAT, host_entries, mask_document
from muster.domain.secret import Secret
from muster.domain.workflows import Workflow
from muster.engine.rollout_result import RolloutRun

__all__ = ["report_document", "secret_values"]


def secret_values(workflow: Workflow, params: Mapping[str, object] | None) -> list[str]:
    """The clear values given for ``workflow``'s secret parameters."""
    secret_names = {p.name for p in workflow.parameters if p.type is ParameterType.SECRET}
    out: list[str] = []
    for name, value in (params or {}).items():
        if name in secret_names and value not in (None, ""):
            out.append(value.reveal() if isinstance(value, Secret) else str(value))
    return out


def report_document(
    run: RolloutRun,
    *,
    workflow: Workflow | None = None,
    params: Mapping[str, object] | None = None,
    secrets: Iterable[str] = (),
) -> dict[str, Any]:
    """The rollout as one JSON-able report, secrets masked.

    Given the ``workflow`` and the ``params`` it ran with, the values of its
    secret parameters are masked (and its other parameters listed); ``secrets``
    adds any other values to mask.
    """
    doc = run.to_dict()
    hidden = list(secrets)
    if workflow is not None:
        hidden += secret_values(workflow, params)
        secret_names = [p.name for p in workflow.parameters if p.type is ParameterType.SECRET]
        doc["parameters"] = {
            k: "***" if k in secret_names else v
            for k, v in (params or {}).items()
            if isinstance(v, str | int | float | bool)
        }
        doc["secret_parameters"] = secret_names
    doc["format"] = REPORT_FORMAT
    doc["hosts"] = host_entries(doc)
    return mask_document(doc, hidden)
