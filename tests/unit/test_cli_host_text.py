"""Host output on the operator's terminal (issue 16): hostile bytes stay inert, lines
stay whole, events read as key=value, and the cost stays flat."""

from __future__ import annotations

import codecs
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.cli import host_text
from muster.cli.host_text import (
    STREAM_LINE_CAP,
    TERMINAL_CAP_BYTES,
    TERMINAL_CAP_LINES,
    LineSplitter,
    render_block,
    render_event,
    terminal_safe,
)

#: What must never reach a terminal from host output: ESC or a C1 control
#: (except a kept SGR colour), BEL, backspace, a bare CR.
DANGEROUS = re.compile(r"\x1b(?!\[[0-9;:]*m)|[\x00-\x08\x0b-\x1a\x1c-\x1f\x7f-\x9f\u202e]")

HOSTILE = [
    "\x1b[2J\x1b[H",  # clear the screen, cursor home
    "\x1b[1A\x1b[2Kweb-02 | SUCCEEDED",  # overwrite the line above (another host's)
    "\x1b]0;owned\x07",  # window title
    "\x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\",  # hyperlink
    "\x1bP+q\x1b\\",  # DCS query
    "\x9b2J",  # one-character CSI
    "a\bb\x07c\x00d\x7f",
    "\u202eevil",
    "\x1b[8mhidden\x1b[0m",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_no_control_sequence_but_colour_reaches_the_terminal(text: str) -> None:
    for colour in (False, True):
        out = terminal_safe(text, colour=colour)
        assert not DANGEROUS.search(out), repr(out)
    assert terminal_safe("\x1b[2J") == "^[[2J"
    assert terminal_safe("\x9b2J") == "<U+009B>2J"
    # Concealed text is not hidden: that one SGR is dropped, colours stay.
    assert terminal_safe("\x1b[8mhidden\x1b[38;5;8mgrey", colour=True) == (
        "hidden\x1b[38;5;8mgrey\x1b[0m"
    )


def test_colour_is_kept_on_a_terminal_reset_at_line_end_and_dropped_elsewhere() -> None:
    text = "\x1b[31mred\nplain\x1b[1;32m bold green\n"
    assert terminal_safe(text, colour=True) == (
        "\x1b[31mred\x1b[0m\nplain\x1b[1;32m bold green\x1b[0m\n"
    )
    assert terminal_safe(text) == "red\nplain bold green\n"


def test_markup_is_text() -> None:
    text = "[bold]not bold[/] [/x] [link=http://x]y[/link]"
    assert terminal_safe(text) == text
    assert render_block(text)[0] == text


def test_progress_bar_shows_its_last_state_and_crlf_is_a_line_end() -> None:
    assert terminal_safe("10%\r50%\r100%\nnext\r\n") == "100%\nnext\n"
    assert terminal_safe("done\r") == "done"
    assert terminal_safe("0%\r\x1b[31m9%") == "9%"


def test_invalid_utf8_and_lone_surrogates_are_replaced() -> None:
    decoded = codecs.getincrementaldecoder("utf-8")("replace").decode(b"ok \xff\xfe \xc3", True)
    assert terminal_safe(decoded) == "ok \ufffd\ufffd \ufffd"
    assert terminal_safe("a\udcff") == "a\ufffd"
    assert terminal_safe("héllo ✓ 日本") == "héllo ✓ 日本"


def test_block_is_capped_by_lines_and_bytes() -> None:
    many = "".join(f"line {i}\n" for i in range(1000))
    block, lines, used = render_block(many)
    assert lines == TERMINAL_CAP_LINES and block.endswith(f"line {TERMINAL_CAP_LINES - 1}")
    assert used == len("".join(f"line {i}\n" for i in range(TERMINAL_CAP_LINES)))
    one_line = "x" * 20_000_000
    block, lines, used = render_block(one_line)
    assert lines == 1 and used == TERMINAL_CAP_BYTES and len(block) == TERMINAL_CAP_BYTES


def test_events_render_as_key_value_and_are_terminal_safe() -> None:
    assert render_event({"step": "migrate", "n": 3, "ok": True, "msg": "two words"}) == (
        'step=migrate n=3 ok=true msg="two words"'
    )
    hostile = render_event({"k\x1b[2J": "[bold]\x1b]0;t\x07", "nested": {"a": [1, 2]}})
    assert not DANGEROUS.search(hostile)
    assert 'nested={"a":[1,2]}' in hostile
    assert len(render_event({"k": "v" * 10_000})) == 400
    block, _, _ = render_block('@@{"deployed": "v2", "files": 3}\n@@not json\nplain\n')
    assert block == "@@ deployed=v2 files=3\n@@not json\nplain"


def _feed_all(splitter: LineSplitter, text: str, step: int) -> str:
    out = [splitter.feed(text[i : i + step]) for i in range(0, len(text), step)]
    return "".join(out) + splitter.close()


@pytest.mark.parametrize("step", [1, 3, 7, 64, 10_000])
def test_stream_lines_are_whole_and_prefixed_however_chunks_fall(step: int) -> None:
    text = 'first\nsecond [bold]x[/x]\n\x1b[2Jclear\n10%\r100%\n@@{"k": "v"}\nno newline at end'
    out = _feed_all(LineSplitter("web-01 | "), text, step)
    assert out == (
        "web-01 | first\nweb-01 | second [bold]x[/x]\nweb-01 | ^[[2Jclear\n"
        "web-01 | 100%\nweb-01 | @@ k=v\nweb-01 | no newline at end\n"
    )


def test_streamed_lines_of_two_hosts_never_mix_within_a_line() -> None:
    a, b = LineSplitter("a | "), LineSplitter("b | ")
    written = []
    text_a = "".join(f"alpha {i} " * 7 + "\n" for i in range(200))
    text_b = "".join(f"beta {i} " * 5 + "\n" for i in range(200))
    for i in range(0, max(len(text_a), len(text_b)), 13):  # interleaved, cut mid-line
        written.append(a.feed(text_a[i : i + 13]))
        written.append(b.feed(text_b[i : i + 13]))
    lines = "".join(written).splitlines()
    assert len(lines) == 400
    for line in lines:
        host, _, rest = line.partition(" | ")
        word = "alpha" if host == "a" else "beta"
        assert host in ("a", "b") and set(rest.split()[::2]) == {word}, line


def test_a_20_mb_line_without_newline_is_cut_and_kept_small() -> None:
    splitter = LineSplitter("h | ")
    chunk = "x" * 65536
    for _ in range(20_000_000 // 65536):
        assert splitter.feed(chunk) == ""
    assert splitter._partial_len == STREAM_LINE_CAP  # held: the cap, not 20 MB
    out = splitter.close()
    dropped = (20_000_000 // 65536) * 65536 - STREAM_LINE_CAP
    assert (
        out == "h | " + "x" * STREAM_LINE_CAP + f" [muster: line cut, {dropped} more characters]\n"
    )
    # A long line inside one chunk is cut the same way, the next line intact.
    splitter = LineSplitter("h | ")
    out = splitter.feed("y" * (STREAM_LINE_CAP + 5) + "\nshort\n")
    assert (
        out
        == "h | " + "y" * STREAM_LINE_CAP + " [muster: line cut, 5 more characters]\nh | short\n"
    )


#: Pieces that make and break escape sequences, in any order.
_PIECES = ["\x1b", "[", "]", "0", "1", "3", "8", ";", ":", "m", "J", "a", " ", "\x07", "\x9b"]
_PIECES += ["\n", "\t", "\r", "é", "\u202e", "\x00", "\x1b[31m", "\x1b[0m", "[bold]"]


@given(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join))
def test_off_a_terminal_the_fast_path_equals_the_one_pass_rule(text: str) -> None:
    """Off a terminal SGRs are removed in one C-level pass before controls are shown;
    the result must be what the one-pass rule (each SGR removed, every other control
    shown, left to right) gives, and nothing dangerous may survive."""
    out = terminal_safe(text)
    assert not DANGEROUS.search(out) and "\x1b" not in out, repr(out)
    lines = text
    if "\r" in lines:
        lines = host_text._CRLF.sub("\n", lines)
        lines = host_text._REDRAWN.sub("", lines).replace("\r", "")
    one_pass = host_text._UNSAFE.sub(
        lambda m: "" if m.group(1) is not None else host_text._visible(m.group(0)), lines
    )
    assert out == one_pass
