"""The console's pure parts: result grouping, side-by-side diff, form parsing."""

from __future__ import annotations

import pytest

from muster.domain.params import ParameterSpec, ParameterType
from muster.domain.states import HostRunState as S
from muster.errors import ValidationError
from muster.server.web.diff import side_by_side
from muster.server.web.forms import execute_values, host_refs, script_form, to_version
from muster.server.web.grouping import group_results
from muster.store.console_reads import RunDigest


def digest(host: str, state: S = S.SUCCEEDED, code: int | None = 0, **kw: str) -> RunDigest:
    return RunDigest(
        state,
        code,
        kw.get("reason"),
        kw.get("message"),
        kw.get("out", "ok\n"),
        kw.get("err", ""),
        host,
    )


def test_identical_results_group_together_largest_first() -> None:
    runs = [digest(f"web{i}") for i in range(812)]
    runs += [
        digest(f"db{i}", S.FAILED, 1, err="disk full\nmore", reason="command_failed")
        for i in range(3)
    ]
    runs += [
        digest(f"x{i}", S.FAILED, None, reason="unreachable", out="", message="no route")
        for i in range(2)
    ]
    groups = group_results(runs)
    assert [(g.count, g.label) for g in groups] == [
        (812, "same output, exit 0"),
        (3, "exit 1, 'disk full'"),
        (2, "failed, unreachable, 'no route'"),
    ]
    assert groups[1].hosts == ["db0", "db1", "db2"]
    assert len(groups[0].as_json()["hosts"]) == 5  # type: ignore[arg-type]


def test_different_output_or_exit_code_splits_a_group() -> None:
    groups = group_results(
        [digest("a"), digest("b", out="other\n"), digest("c", code=3, state=S.FAILED)]
    )
    assert sorted(g.count for g in groups) == [1, 1, 1]


def test_unfinished_hosts_group_by_state_only() -> None:
    groups = group_results([digest("a", S.RUNNING, None, out="x"), digest("b", S.RUNNING, None)])
    assert [(g.count, g.label) for g in groups] == [(2, "running")]


def test_diff_pairs_changed_lines_and_aligns_the_rest() -> None:
    rows = side_by_side("a\nb\nc\n", "a\nB\nc\nd\n")
    assert [(r.kind, r.left_no, r.right_no) for r in rows] == [
        ("same", 1, 1),
        ("changed", 2, 2),
        ("same", 3, 3),
        ("added", None, 4),
    ]
    removed = side_by_side("x\ny\n", "x\n")
    assert (
        removed[-1].kind == "removed" and removed[-1].left == "y" and removed[-1].right_no is None
    )


def form(**fields: str) -> dict[str, list[str]]:
    return {k: [v] for k, v in fields.items()}


def test_script_form_becomes_a_version_with_typed_parameters() -> None:
    data = form(
        name="deploy",
        shell="bash",
        body="echo ${count}\r\n",
        timeout="30",
        tags="a, b,",
        requires_approval="on",
        p0_name="count",
        p0_type="integer",
        p0_default="5",
        p0_required="on",
        p1_name="",  # an empty row is ignored
    )
    version, tags = to_version(script_form(data))
    assert version.body == "echo ${count}\n" and version.timeout == 30
    assert version.requires_approval and tags == ["a", "b"]
    assert version.parameters == (
        ParameterSpec("count", ParameterType.INTEGER, required=True, default=5),
    )


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"timeout": "0"}, "timeout"),
        ({"name": ""}, "name"),
        ({"p0_name": "n", "p0_type": "integer", "p0_default": "many"}, "p0_default"),
        ({"p0_name": "c", "p0_type": "choice"}, "p0_choices"),
        ({"shell": "fish"}, "shell"),
    ],
)
def test_script_form_problems_name_the_form_field(fields: dict[str, str], key: str) -> None:
    data = form(**{"name": "x", "shell": "bash", "body": "echo", "timeout": "10", **fields})
    with pytest.raises(ValidationError) as caught:
        to_version(script_form(data))
    assert key in caught.value.problems, caught.value.problems


def test_execute_values_treat_empty_as_missing_and_checkbox_as_boolean() -> None:
    specs = [
        ParameterSpec("n", ParameterType.INTEGER),
        ParameterSpec("flag", ParameterType.BOOLEAN),
        ParameterSpec("pw", ParameterType.SECRET),
    ]
    assert execute_values(specs, form(**{"param.n": "", "param.pw": "s"})) == {
        "flag": "false",
        "pw": "s",
    }
    assert execute_values(specs, form(**{"param.flag": "true"}))["flag"] == "true"
    assert host_refs(" web, db  label=x ,,") == ["web", "db", "label=x"]


def test_stopped_hosts_group_by_state_whatever_they_printed() -> None:
    runs = [
        digest(f"h{i}", S.CANCELLED, None, out=f"tick {i}\n", message="cancelled on request")
        for i in range(16)
    ]
    groups = group_results(runs)
    assert [(g.count, g.label) for g in groups] == [(16, "cancelled on request")]


def test_one_host_is_not_the_same_output_and_the_exit_code_is_said_once() -> None:
    groups = group_results([digest("a"), digest("b", S.FAILED, 3, out="", message="exit code 3")])
    assert sorted(g.label for g in groups) == ["exit 0", "exit 3"]


def test_diff_lists_changed_parameter_fields_and_timeouts_in_seconds() -> None:
    from types import SimpleNamespace

    from muster.server.web.diff import setting_changes

    def version(default: int, timeout: float) -> SimpleNamespace:
        spec = ParameterSpec("n", ParameterType.INTEGER, default=default)
        return SimpleNamespace(
            shell="sh",
            timeout=timeout,
            requires_approval=False,
            idempotent=False,
            parameters=(spec,),
        )

    changes = setting_changes(version(5, 120.0), version(7, 90.0))
    assert [(c.label, c.old, c.new) for c in changes] == [
        ("timeout (seconds)", "120", "90"),
        ("parameter n: default", "5", "7"),
    ]
