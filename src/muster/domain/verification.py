"""Configuration verification (seed 004): capture state before and after a change, compare.

The public face of ``verification_*`` modules; import from here. A verification
is parsed once from its user form (:func:`parse_verification`), captured on each
host by one sh script (:func:`capture_script`, read back by :func:`parse_capture`),
and judged per host (:func:`evaluate`) into :class:`HostEvidence`, which
:func:`evidence_report` exports as JSON. All of it is pure: the engine runs the
scripts and hands the texts in.
"""

from __future__ import annotations

from muster.domain.verification_capture import capture_script, parse_capture
from muster.domain.verification_eval import assertions, evaluate, evidence_report
from muster.domain.verification_model import (
    Captured,
    Check,
    CheckResult,
    CheckType,
    HostEvidence,
    Verification,
    VersionScheme,
)
from muster.domain.verification_parse import parse_verification, verification_to_dict

__all__ = [
    "Captured",
    "Check",
    "CheckResult",
    "CheckType",
    "HostEvidence",
    "Verification",
    "VersionScheme",
    "assertions",
    "capture_script",
    "evaluate",
    "evidence_report",
    "parse_capture",
    "parse_verification",
    "verification_to_dict",
]
