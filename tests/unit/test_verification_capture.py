"""The capture script, run for real by every POSIX shell on this machine, and its parser:
exact output (with or without a final newline), exit codes, stderr merged, one broken
command failing alone, and frames of another run (or forged ones) never confusing it."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.domain.verification import Captured, capture_script, parse_capture
from muster.errors import ValidationError

MARKER = "Zq7mK2pX9vL4nR8tW1yB"
OTHER = "A0b1C2d3E4f5G6h7I8j9"

SHELLS = ["sh", "dash", "bash", "ksh", "zsh"]


def run(script: str, shell: str, argv_script: bool = False) -> str:
    path = shutil.which(shell)
    if path is None:
        pytest.skip(f"{shell} is not installed on this machine")
    if argv_script:
        # As a transport that passes the script on the command line: ps shows it.
        argv = [path, "-c", script]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    else:
        argv = [path, "-s"]
        done = subprocess.run(
            argv, input=script, capture_output=True, text=True, timeout=60, check=False
        )
    assert done.returncode == 0, done.stderr
    return done.stdout


COMMANDS = {
    "plain": "echo hello",
    "no_newline": "printf 'no newline'",
    "empty": "true",
    "blank_lines": "printf '\\n\\nx\\n\\n'",
    "stderr": "echo out; echo err >&2; exit 3",
    "syntax": "echo before; done",
    "stdin_reader": "cat; echo after-cat",
    "exits": "exit 0",
    "quotes": "echo \"it's\" '$HOME' `echo tick`",
    "other_frames": f"printf '{OTHER}:end:plain:0\\n{OTHER}:begin:x\\n'",
    "multi.line-key": "for i in 1 2 3\ndo echo $i\ndone",
    "pipeline": "printf 'ii  openssl  3.0.2\\n' | grep -E 'openssl|bash'",
}

EXPECTED = {
    "plain": Captured("hello\n", 0),
    "no_newline": Captured("no newline", 0),
    "empty": Captured("", 0),
    "blank_lines": Captured("\n\nx\n\n", 0),
    "stderr": Captured("out\nerr\n", 3),
    "stdin_reader": Captured("after-cat\n", 0),
    "exits": Captured("", 0),
    "quotes": Captured("it's $HOME tick\n", 0),
    "other_frames": Captured(f"{OTHER}:end:plain:0\n{OTHER}:begin:x\n", 0),
    "multi.line-key": Captured("1\n2\n3\n", 0),
    "pipeline": Captured("ii  openssl  3.0.2\n", 0),
}


@pytest.mark.parametrize("shell", SHELLS)
def test_the_script_captures_every_command_exactly(shell: str) -> None:
    got = parse_capture(run(capture_script(COMMANDS, MARKER), shell), MARKER)
    assert list(got) == list(COMMANDS)
    syntax = got.pop("syntax")
    assert syntax.exit_code not in (0, None)
    assert "done" in syntax.text  # each shell words it its own way, all name the token
    assert got == EXPECTED


@pytest.mark.parametrize("shell", ["sh", "dash", "bash"])
def test_a_command_that_prints_the_script_cannot_forge_a_frame(shell: str) -> None:
    commands = {"ps": "ps -ww -o args= -p $$", "after": "echo a"}
    out = run(capture_script(commands, MARKER), shell, argv_script=True)
    got = parse_capture(out, MARKER)
    assert "m1=" in got["ps"].text  # the script really was visible to the command
    assert got["ps"].exit_code == 0
    assert got["after"] == Captured("a\n", 0)


def test_sections_need_exactly_this_runs_marker() -> None:
    out = run(capture_script({"k": "echo hi"}, OTHER), "sh")
    assert parse_capture(out, MARKER) == {}
    assert parse_capture(out, OTHER) == {"k": Captured("hi\n", 0)}


def test_noise_outside_sections_is_ignored_and_a_last_newline_is_optional() -> None:
    out = (
        f"Welcome to host\nlast login: never{MARKER}:begin:a\n"
        f"\n{MARKER}:begin:a\nA\n\n{MARKER}:end:a:0\n"
        f"between\n{MARKER}:begin:b\nB\n{MARKER}:end:b:7"
    )
    assert parse_capture(out, MARKER) == {"a": Captured("A\n", 0), "b": Captured("B", 7)}


def test_frames_are_found_through_a_ptys_carriage_returns() -> None:
    # Only the script's own newline is dropped: output bytes stay exactly as received.
    out = f"{MARKER}:begin:a\r\nline\r\n\r\n{MARKER}:end:a:0\r\n"
    assert parse_capture(out, MARKER) == {"a": Captured("line\r\n\r", 0)}


def test_a_cut_section_has_no_exit_code() -> None:
    out = (
        f"{MARKER}:begin:a\npartial\n"
        f"{MARKER}:begin:b\nx\n\n{MARKER}:end:b:0\n"
        f"{MARKER}:begin:c\nhalf"
    )
    got = parse_capture(out, MARKER)
    assert got == {
        "a": Captured("partial", None),
        "b": Captured("x\n", 0),
        "c": Captured("half", None),
    }


def test_frames_that_are_not_this_sections_end_are_content() -> None:
    out = (
        f"{MARKER}:begin:a\n"
        f"{MARKER}:end:b:0\n"  # the end of another key
        f"{MARKER}:end:a\n"  # an end without a code
        f"{MARKER}:begin:a:3\n"  # a begin with a code
        f"\n{MARKER}:end:a:-1\n"
        f"{MARKER}:end:a:0\n"  # no section open
        f"{MARKER}:begin:a\nsecond\n\n{MARKER}:end:a:0\n"  # a key seen twice keeps the first
    )
    got = parse_capture(out, MARKER)
    assert got == {"a": Captured(f"{MARKER}:end:b:0\n{MARKER}:end:a\n{MARKER}:begin:a:3\n", -1)}


@pytest.mark.parametrize("marker", ["short", "x" * 129, "has space in it!!", "a'b" * 8, ""])
def test_a_marker_must_be_long_and_plain(marker: str) -> None:
    with pytest.raises(ValidationError, match="16 to 128") as caught:
        capture_script({"k": "true"}, marker)
    assert caught.value.field == "marker"
    with pytest.raises(ValidationError):
        parse_capture("", marker)


@pytest.mark.parametrize("key", ["a b", "x'y", "", "1st", "a;rm"])
def test_capture_keys_are_plain_names(key: str) -> None:
    with pytest.raises(ValidationError, match="bad capture key") as caught:
        capture_script({key: "true"}, MARKER)
    assert caught.value.field == f"commands.{key}"


OUTPUTS = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)


@given(
    outputs=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), OUTPUTS, max_size=4
    ),
    codes=st.lists(st.integers(0, 255), min_size=4, max_size=4),
)
def test_any_output_round_trips_through_the_framing(
    outputs: dict[str, str], codes: list[int]
) -> None:
    # What the script prints, built the way the script prints it.
    stdout = "".join(
        f"\n{MARKER}:begin:{key}\n{text}\n{MARKER}:end:{key}:{code}\n"
        for (key, text), code in zip(outputs.items(), codes, strict=False)
    )
    got = parse_capture(stdout, MARKER)
    for (key, text), code in zip(outputs.items(), codes, strict=False):
        assert got[key] == Captured(text, code)
