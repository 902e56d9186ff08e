"""The CLI's human report (issue 16): grouped, full and streamed output of hostile
hosts, ``--output-dir`` files, and events in the summary."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from muster.cli.human import HostEnd, HumanReport, OutputMode, Terminal
from muster.cli.output_files import OutputDir
from muster.cli.present import summary_table
from muster.domain.states import HostRunState as S
from muster.errors import ValidationError

DANGEROUS = re.compile(r"\x1b|[\x00-\x08\x0b-\x1f\x7f-\x9f]")

HOSTILE_OUT = (
    "ok [bold]markup[/] [/x]\n\x1b[2J\x1b[1A\x1b]0;title\x07\n10%\r55%\r100%\n"
    "\udcff bad \ufffd utf-8\n"
    '@@{"step": "migrate", "note": "[red]x\\u001b[2J"}\n'
)


def report(
    mode: OutputMode | None = None, total: int = 10, **kw: object
) -> tuple[HumanReport, io.StringIO]:
    out = io.StringIO()
    return HumanReport(Terminal(out, status=False), total, mode=mode, **kw), out  # type: ignore[arg-type]


def feed(r: HumanReport, host: str, stdout: str, stderr: str = "", step: int = 7) -> None:
    for i in range(0, max(len(stdout), len(stderr)), step):
        r.output(host, "stdout", stdout[i : i + step])
        r.output(host, "stderr", stderr[i : i + step])


def test_grouped_prints_identical_results_once_with_their_hosts() -> None:
    r, out = report()
    for i in range(8):
        feed(r, f"web{i}", HOSTILE_OUT)
        r.finished(HostEnd(f"web{i}", S.SUCCEEDED, 0))
    feed(r, "db1", HOSTILE_OUT, "disk full\n")
    r.finished(HostEnd("db1", S.FAILED, 3))
    feed(r, "db2", HOSTILE_OUT + "one more line\n")  # differs only at the end
    r.finished(HostEnd("db2", S.SUCCEEDED, 0))
    assert out.getvalue() == ""  # nothing until every host is in
    r.close()
    text = out.getvalue()
    assert not DANGEROUS.search(text), repr(text)
    headers = [ln for ln in text.splitlines() if ln.startswith("===")]
    assert headers == [
        "=== 8 hosts: SUCCEEDED, same output, exit 0",
        "=== db2: SUCCEEDED, exit 0",
        "=== db1: FAILED, exit 3, 'disk full'",
    ]
    assert "    web0, web1, web2, web3, web4, web5, web6, web7\n" in text
    assert text.count("ok [bold]markup[/] [/x]\n") == 3
    assert "^[[2J^[[1A^[]0;title^G\n100%\n\ufffd bad \ufffd utf-8\n" in text
    assert '@@ step=migrate note="[red]x\\u001b[2J"\n' in text
    assert "--- stderr\ndisk full\n" in text


def test_grouping_sees_every_byte_not_only_the_shown_head() -> None:
    r, out = report(OutputMode.GROUPED)
    head = "same\n" * 50_000
    for host, tail in (("a", "end-1\n"), ("b", "end-1\n"), ("c", "end-2\n")):
        feed(r, host, head + tail, step=65536)
        r.finished(HostEnd(host, S.SUCCEEDED, 0))
    r.close()
    text = out.getvalue()
    assert "=== 2 hosts: SUCCEEDED" in text and "=== c: SUCCEEDED" in text
    assert "[muster: stdout cut at 100 lines / 500 B of 244.1 KiB (the same on every" in text
    assert "--output-dir DIR keeps every byte" in text


def test_full_prints_each_host_as_it_ends_capped() -> None:
    r, out = report(total=2)
    assert r.mode is OutputMode.FULL
    feed(r, "web1", "x" * 20_000_000, step=1 << 20)  # one 20 MB line, no newline
    r.finished(HostEnd("web1", S.SUCCEEDED, 0, duration=1.5))
    text = out.getvalue()
    assert text.startswith("web1 | SUCCEEDED | rc=0 | 1.50s\n" + "x" * 16384 + "\n")
    assert "cut at 1 lines / 16.0 KiB of 19.1 MiB; the rest:" in text
    assert len(text) < 17_000


def test_stream_prefixes_whole_lines_and_ends_each_host() -> None:
    r, out = report(stream=True)
    feed(r, "web-01", HOSTILE_OUT, "warn\n", step=3)
    feed(r, "db", "a\nb", step=1)
    r.finished(HostEnd("web-01", S.SUCCEEDED, 0))
    r.finished(HostEnd("db", S.FAILED, 1, message="\x1b[2Jboom"))
    r.close()
    text = out.getvalue()
    assert not DANGEROUS.search(text), repr(text)
    lines = text.splitlines()
    assert "web-01 | ok [bold]markup[/] [/x]" in lines
    assert "web-01 | 100%" in lines
    assert 'web-01 | @@ step=migrate note="[red]x\\u001b[2J"' in lines
    assert "web-01 ! warn" in lines
    assert [ln for ln in lines if ln.startswith("db     |")] == ["db     | a", "db     | b"]
    assert "db | FAILED | rc=1 | ^[[2Jboom" in lines
    assert lines[-1] == "db | FAILED | rc=1 | ^[[2Jboom"


def test_none_prints_nothing_but_output_dir_keeps_every_byte(tmp_path: Path) -> None:
    files = OutputDir(tmp_path / "out")
    r, out = report(OutputMode.NONE, output_dir=files)
    body = HOSTILE_OUT * 1000
    feed(r, "web1", body, "err\n", step=4096)
    r.finished(HostEnd("web1", S.SUCCEEDED, 0))
    r.finished(HostEnd("quiet", S.SUCCEEDED, 0))
    r.close()
    assert out.getvalue() == f"output of every host: {tmp_path / 'out'}/HOST.stdout|stderr\n"
    written = (tmp_path / "out" / "web1.stdout").read_bytes()
    assert written == body.encode("utf-8", "replace")
    assert (tmp_path / "out" / "web1.stderr").read_text() == "err\n"
    assert (tmp_path / "out" / "quiet.stdout").read_text() == ""


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", "", "x\0y", "a\\b"])
def test_output_dir_refuses_names_that_leave_it(tmp_path: Path, name: str) -> None:
    files = OutputDir(tmp_path / "out")
    with pytest.raises(ValidationError, match="cannot be a file name"):
        files.path(name, "stdout")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_dir_refuses_a_planted_symlink(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "web1.stdout").symlink_to(tmp_path / "victim")
    with pytest.raises(ValidationError):
        OutputDir(tmp_path / "out").path("web1", "stdout")


def test_summary_lists_events_where_few_and_counts_them_where_many() -> None:
    ends = [
        HostEnd("web1", S.SUCCEEDED, 0, events=[{"v": "2.1", "msg": "[bold]up[/]"}], event_count=1),
        HostEnd("web2", S.SUCCEEDED, 0, events=[{"i": 1}] * 3, event_count=400),
        HostEnd("db1", S.FAILED, 2, first_error="\x1b]0;t\x07disk [red]full"),
    ]
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(summary_table(ends, "execution failed"))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "v=2.1 msg=[bold]up[/]" in text
    assert "400 events (--json has them all)" in text
    assert "^[]0;t^Gdisk [red]full" in text
    assert "\x1b" not in text


def test_summary_says_when_events_were_past_the_budget() -> None:
    ends = [HostEnd("web1", S.SUCCEEDED, 0, events=[{"i": 1}], event_count=90, events_dropped=10)]
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(summary_table(ends, "execution succeeded"))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "100 events; --json has the first 90" in text
    assert "them all" not in text


def test_summary_of_many_hosts_lists_those_worth_a_look() -> None:
    ends = [HostEnd(f"web{i}", S.SUCCEEDED, 0) for i in range(500)]
    ends.append(HostEnd("db1", S.FAILED, 1, first_error="boom"))
    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(summary_table(ends, "execution failed"))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "db1" in text and "web1 " not in text
    assert "1 failed, 500 succeeded; 500 hosts not" in text
    assert "listed (--json lists every host)" in text


def test_grouped_20_mb_lines_without_newline_group_and_stay_capped() -> None:
    r, out = report(OutputMode.GROUPED)
    chunk = "\x1b[31m[b]" + "z" * 65_527  # 64 KiB chunks of one endless line
    for host in ("a", "b"):
        for _ in range(320):  # 20 MiB
            r.output(host, "stdout", chunk)
        r.finished(HostEnd(host, S.SUCCEEDED, 0))
    r.output("c", "stdout", chunk)
    r.finished(HostEnd("c", S.SUCCEEDED, 0))
    r.close()
    text = out.getvalue()
    assert "=== 2 hosts: SUCCEEDED, same output, exit 0\n    a, b\n[b]zzz" in text
    assert "=== c: SUCCEEDED, exit 0\n[b]zzz" in text
    assert "of 20.0 MiB (the same on every host of the group)" in text
    assert len(text) < 2 * 16_384 + 1_000
    assert not DANGEROUS.search(text)


def test_group_lists_its_hosts_in_name_order_not_finish_order() -> None:
    r, out = report(OutputMode.GROUPED)
    for host in ("web10", "web2", "db1", "web1"):
        feed(r, host, "same\n")
        r.finished(HostEnd(host, S.SUCCEEDED, 0))
    r.close()
    assert "=== 4 hosts: SUCCEEDED, same output, exit 0\n    db1, web1, web2, web10\n" in (
        out.getvalue()
    )


def test_a_streamed_line_cut_at_the_cap_says_where_the_whole_line_is(tmp_path: Path) -> None:
    long_line = "y" * 10_000 + "\n"
    r, out = report(stream=True)
    feed(r, "web1", long_line, step=999)
    r.finished(HostEnd("web1", S.SUCCEEDED, 0))
    assert (
        " [muster: line cut, 5904 more characters; the whole line: --output-dir DIR keeps it]\n"
        in (out.getvalue())
    )
    files = OutputDir(tmp_path / "out")
    r, out = report(stream=True, output_dir=files)
    feed(r, "web1", long_line, step=999)
    r.finished(HostEnd("web1", S.SUCCEEDED, 0))
    where = tmp_path / "out" / "web1.stdout"
    assert f"5904 more characters; the whole line: {where}]\n" in out.getvalue()
    assert where.read_text() == long_line
