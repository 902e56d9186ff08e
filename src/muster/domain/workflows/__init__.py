"""Workflows: one definition model, validation, references, expressions and the
state machine that every face (library, CLI, server) drives.

Pure: nothing here does I/O. See :mod:`.model` for the vocabulary and the
activation rules, :mod:`.machine` for how an instance moves.
"""

from muster.domain.workflows.model import (
    END,
    FAIL,
    ApprovalConfig,
    ConditionalConfig,
    DelayConfig,
    ScriptRef,
    Step,
    StepType,
    Workflow,
    WorkflowError,
)
from muster.domain.workflows.parse import (
    load_workflow_text,
    parse_workflow,
    workflow_hash,
    workflow_to_dict,
)
from muster.domain.workflows.results import (
    HostOutcome,
    StepResult,
    StepVerdict,
    judge_step,
    merge_events,
)
from muster.domain.workflows.state import (
    InstanceState,
    InstanceStatus,
    StepState,
    StepStatus,
    WaitReason,
)
from muster.domain.workflows.validate import Graph, validate

__all__ = [
    "END",
    "FAIL",
    "ApprovalConfig",
    "ConditionalConfig",
    "DelayConfig",
    "Graph",
    "HostOutcome",
    "InstanceState",
    "InstanceStatus",
    "ScriptRef",
    "Step",
    "StepResult",
    "StepState",
    "StepStatus",
    "StepType",
    "StepVerdict",
    "WaitReason",
    "Workflow",
    "WorkflowError",
    "judge_step",
    "load_workflow_text",
    "merge_events",
    "parse_workflow",
    "validate",
    "workflow_hash",
    "workflow_to_dict",
]
