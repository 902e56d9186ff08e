"""muster: run versioned scripts on fleets of servers, safely and fast.

The library face. Build a :class:`ScriptVersion`, load an inventory, and
:func:`run` it on a selector; read the :class:`Execution` that comes back.
For multi-step work, build a :class:`MaintenanceWorkflow` (or load a YAML
:class:`Workflow`) and run it with :class:`Engine`.
Names are imported on first use, so ``import muster.cli`` and friends do not
pay for SSH and HTTP libraries they may not need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "SshOptions": "muster.app",
    "Execution": "muster.domain.executions",
    "HostRun": "muster.domain.executions",
    "Host": "muster.domain.hosts",
    "TransportKind": "muster.domain.hosts",
    "Inventory": "muster.domain.inventory",
    "ParameterSpec": "muster.domain.params",
    "ParameterType": "muster.domain.params",
    "Plan": "muster.domain.plans",
    "PlanCommand": "muster.domain.plans",
    "PlanFile": "muster.domain.plans",
    "Library": "muster.domain.scripts",
    "Script": "muster.domain.scripts",
    "ScriptVersion": "muster.domain.scripts",
    "Shell": "muster.domain.scripts",
    "Secret": "muster.domain.secret",
    "select": "muster.domain.selectors",
    "ExecutionStatus": "muster.domain.states",
    "FailureReason": "muster.domain.states",
    "HostRunState": "muster.domain.states",
    "DispatchPolicy": "muster.engine.dispatcher",
    "ExecutionListener": "muster.engine.dispatcher",
    "load_inventory": "muster.engine.inventory_files",
    "MaintenanceWindow": "muster.domain.windows",
    "parse_recurring": "muster.domain.windows",
    "WindowMode": "muster.engine.windows",
    "WindowRule": "muster.engine.windows",
    "Workflow": "muster.domain.workflows",
    "WorkflowError": "muster.domain.workflows",
    "load_workflow_text": "muster.domain.workflows",
    "WorkflowRun": "muster.engine.workflow",
    "RolloutEngine": "muster.engine.rollout",
    "RolloutRun": "muster.engine.rollout_result",
    "RolloutStatus": "muster.engine.rollout_result",
    "command_rollout": "muster.domain.workflows.rollout_steps",
    "Engine": "muster.maintenance",
    "MaintenanceWorkflow": "muster.maintenance",
    "SSHAuth": "muster.maintenance",
    "MusterError": "muster.errors",
    "ParameterError": "muster.errors",
    "ValidationError": "muster.errors",
    "run": "muster.library",
    "run_async": "muster.library",
}

__all__ = [
    "DispatchPolicy",
    "Engine",
    "Execution",
    "ExecutionListener",
    "ExecutionStatus",
    "FailureReason",
    "Host",
    "HostRun",
    "HostRunState",
    "Inventory",
    "Library",
    "MaintenanceWindow",
    "MaintenanceWorkflow",
    "MusterError",
    "ParameterError",
    "ParameterSpec",
    "ParameterType",
    "Plan",
    "PlanCommand",
    "PlanFile",
    "RolloutEngine",
    "RolloutRun",
    "RolloutStatus",
    "SSHAuth",
    "Script",
    "ScriptVersion",
    "Secret",
    "Shell",
    "SshOptions",
    "TransportKind",
    "ValidationError",
    "WindowMode",
    "WindowRule",
    "Workflow",
    "WorkflowError",
    "WorkflowRun",
    "command_rollout",
    "load_inventory",
    "load_workflow_text",
    "parse_recurring",
    "run",
    "run_async",
    "select",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'muster' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


if TYPE_CHECKING:
    from muster.app import SshOptions
    from muster.domain.executions import Execution, HostRun
    from muster.domain.hosts import Host, TransportKind
    from muster.domain.inventory import Inventory
    from muster.domain.params import ParameterSpec, ParameterType
    from muster.domain.plans import Plan, PlanCommand, PlanFile
    from muster.domain.scripts import Library, Script, ScriptVersion, Shell
    from muster.domain.secret import Secret
    from muster.domain.selectors import select
    from muster.domain.states import ExecutionStatus, FailureReason, HostRunState
    from muster.domain.windows import MaintenanceWindow, parse_recurring
    from muster.domain.workflows import Workflow, WorkflowError, load_workflow_text
    from muster.domain.workflows.rollout_steps import command_rollout
    from muster.engine.dispatcher import DispatchPolicy, ExecutionListener
    from muster.engine.inventory_files import load_inventory
    from muster.engine.rollout import RolloutEngine
    from muster.engine.rollout_result import RolloutRun, RolloutStatus
    from muster.engine.windows import WindowMode, WindowRule
    from muster.engine.workflow import WorkflowRun
    from muster.errors import MusterError, ParameterError, ValidationError
    from muster.library import run, run_async
    from muster.maintenance import Engine, MaintenanceWorkflow, SSHAuth
