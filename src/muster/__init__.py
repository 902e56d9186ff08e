"""muster: run versioned scripts on fleets of servers, safely and fast.

The library face. Build a :class:`ScriptVersion`, load an inventory, and
:func:`run` it on a selector; read the :class:`Execution` that comes back.
"""

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
from muster.engine.dispatcher import DispatchPolicy, ExecutionListener
from muster.engine.inventory_files import load_inventory
from muster.errors import MusterError, ParameterError, ValidationError
from muster.library import run, run_async

__all__ = [
    "DispatchPolicy",
    "Execution",
    "ExecutionListener",
    "ExecutionStatus",
    "FailureReason",
    "Host",
    "HostRun",
    "HostRunState",
    "Inventory",
    "Library",
    "MusterError",
    "ParameterError",
    "ParameterSpec",
    "ParameterType",
    "Plan",
    "PlanCommand",
    "PlanFile",
    "Script",
    "ScriptVersion",
    "Secret",
    "Shell",
    "SshOptions",
    "TransportKind",
    "ValidationError",
    "load_inventory",
    "run",
    "run_async",
    "select",
]
