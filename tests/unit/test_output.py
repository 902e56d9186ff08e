"""Output capture: masking across chunk boundaries, bounded storage, @@ events."""

from __future__ import annotations

import base64
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from muster.domain.output import MASK, OutputCapture, mask_all, truncation_marker


def _chunks(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts})
    out, prev = [], 0
    for p in [*points, len(text)]:
        out.append(text[prev:p])
        prev = p
    return out


def _stream(capture: OutputCapture, chunks: list[str]) -> str:
    return "".join(capture.feed(c) for c in chunks) + capture.close()


# Small alphabets make secrets recur, overlap and straddle chunk boundaries.
_alphabet = st.sampled_from("ab*\n@é")
_secret = st.text(_alphabet, min_size=1, max_size=5)


@settings(max_examples=400, deadline=None)
@given(
    text=st.text(_alphabet, max_size=60),
    secrets=st.lists(_secret, max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=60), max_size=12),
)
def test_masking_is_independent_of_chunking(text: str, secrets: list[str], cuts: list[int]) -> None:
    capture = OutputCapture(10_000, secrets)
    forwarded = _stream(capture, _chunks(text, cuts))
    assert forwarded == mask_all(text, secrets)
    assert capture.text == forwarded


@settings(max_examples=300, deadline=None)
@given(
    secret=st.text(st.sampled_from("xyz"), min_size=1, max_size=8),
    noise=st.lists(st.text(st.sampled_from("xyz-"), max_size=6), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=12),
)
def test_a_secret_never_survives_in_forwarded_output(
    secret: str, noise: list[str], cuts: list[int]
) -> None:
    text = secret.join(noise) + secret
    forwarded = _stream(OutputCapture(10_000, [secret]), _chunks(text, cuts))
    # Every occurrence the masking chose is gone; what is left has no secret
    # unless it is made from the mask text itself and neighbours.
    assert secret not in forwarded.replace(MASK, "|")


@settings(max_examples=200, deadline=None)
@given(
    secret=st.text(st.sampled_from("ab?~é"), min_size=6, max_size=9),
    words=st.lists(st.sampled_from(["x", "\n", "=", "YW", "61"]), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=120), max_size=12),
)
def test_encoded_forms_are_masked_whatever_the_chunking(
    secret: str, words: list[str], cuts: list[int]
) -> None:
    raw = secret.encode()
    forms = [
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
        raw.hex().upper(),
        base64.b64encode(b"u:" + raw).decode()[4:-4],
    ]
    text = "".join(w + f for w, f in zip(words, forms * 2, strict=False)) + forms[0]
    capture = OutputCapture(10_000, [secret])
    forwarded = _stream(capture, _chunks(text, cuts))
    assert forwarded == mask_all(text, [secret])
    for form in forms[:4]:
        assert form not in forwarded


def test_base64_of_a_secret_split_across_chunks_is_masked() -> None:
    encoded = base64.b64encode(b"hunter22-password").decode()
    capture = OutputCapture(1000, ["hunter22-password"])
    assert _stream(capture, ["auth: " + encoded[:5], encoded[5:11], encoded[11:] + "\n"]) == (
        f"auth: {MASK}\n"
    )


def test_split_secret_is_masked_and_held_back_only_as_needed() -> None:
    capture = OutputCapture(1000, ["hunter2"])
    assert capture.feed("password: hun") == "password: "
    assert capture.feed("ter2 ok\n") == "*** ok\n"
    assert capture.feed("nothing here") == "nothing here"
    assert capture.close() == ""
    assert capture.text == "password: *** ok\nnothing here"


def test_held_back_prefix_is_released_when_it_turns_out_harmless() -> None:
    capture = OutputCapture(1000, ["secret"])
    assert capture.feed("a sec") == "a "
    assert capture.feed("ond") == "second"
    assert capture.feed("sec") == ""
    assert capture.close() == "sec"


def test_longest_secret_wins_at_one_position() -> None:
    capture = OutputCapture(1000, ["ab", "abcd"])
    assert _stream(capture, ["xab", "cd", "ab"]) == "x******"
    assert mask_all("xabcdab", ["ab", "abcd"]) == "x******"


def test_without_secrets_text_passes_straight_through() -> None:
    capture = OutputCapture(1000, ["", ""])
    assert capture.feed("abc") == "abc"
    assert capture.close() == ""


def test_storage_keeps_the_head_and_counts_the_rest() -> None:
    capture = OutputCapture(10, [])
    for _ in range(1000):
        capture.feed("0123456789")
    capture.close()
    assert capture.truncated
    assert capture.dropped_bytes == 9990
    assert capture.total_bytes == 10_000
    assert capture.text == "0123456789" + truncation_marker(9990)
    assert "9990 more bytes not stored" in capture.text


def test_truncation_never_splits_a_character() -> None:
    capture = OutputCapture(5, [])
    capture.feed("abcdé!")  # é is two bytes: only "abcd" fits in five
    capture.close()
    assert capture.text.startswith("abcd\n[muster")
    assert capture.dropped_bytes == 3


def test_storage_applies_to_masked_text() -> None:
    capture = OutputCapture(6, ["topsecret"])
    capture.feed("topsecret and more")
    capture.close()
    assert capture.text.startswith("*** an")
    assert "topsecret" not in capture.text


def test_events_are_extracted_across_chunks() -> None:
    capture = OutputCapture(1000, [])
    for chunk in ["hello\n@", '@{"step": 1,', ' "ok": true}\nmore\n@@[1,2]\n@@not json\n', "@@{}"]:
        capture.feed(chunk)
    capture.close()
    assert capture.events == [{"step": 1, "ok": True}, {}]


def test_event_must_start_the_line() -> None:
    capture = OutputCapture(1000, [])
    capture.feed('x @@{"a": 1}\n  @@{"b": 2}\n@@{"c": 3}\n')
    capture.close()
    assert capture.events == [{"c": 3}]


def test_events_see_masked_text() -> None:
    capture = OutputCapture(1000, ["pw123"])
    capture.feed('@@{"token": "pw1')
    capture.feed('23"}\n')
    capture.close()
    assert capture.events == [{"token": MASK}]


def test_huge_event_line_is_dropped_without_growing() -> None:
    capture = OutputCapture(100, [], max_event_line=50)
    capture.feed('@@{"a": "')
    for _ in range(100):
        capture.feed("x" * 100)
    capture.feed('"}\n@@{"b": 1}\n')
    capture.close()
    assert capture.events == [{"b": 1}]
    assert capture._scanner is not None and capture._scanner._len == 0


def test_events_can_be_turned_off() -> None:
    capture = OutputCapture(1000, [], extract_events=False)
    capture.feed('@@{"a": 1}\n')
    capture.close()
    assert capture.events == []


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.one_of(
            st.dictionaries(st.text("ab", max_size=3), st.integers(), max_size=2).map(
                lambda d: "@@" + json.dumps(d)
            ),
            st.text(st.sampled_from('a@{}" '), max_size=8),
        ),
        max_size=10,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=15),
)
def test_event_extraction_is_independent_of_chunking(lines: list[str], cuts: list[int]) -> None:
    text = "\n".join(lines)
    whole = OutputCapture(10_000, [])
    whole.feed(text)
    whole.close()
    chunked = OutputCapture(10_000, [])
    _stream(chunked, _chunks(text, cuts))
    expected = []
    for line in lines:
        if line.startswith("@@"):
            try:
                value = json.loads(line[2:])
            except ValueError:
                continue
            if isinstance(value, dict):
                expected.append(value)
    assert whole.events == expected
    assert chunked.events == expected


def test_kept_events_are_bounded_in_bytes_and_the_rest_counted() -> None:
    # 10,000 events of 2 KB per host were 24 MB of memory per host: the byte
    # budget keeps the first events that fit, in order, and counts the others.
    cap = OutputCapture(1000, max_event_bytes=10_000)
    line = '@@{"blob": "' + "x" * 2000 + '", "i": %d}\n'
    cap.feed("".join(line % i for i in range(20)))
    cap.close()
    assert [e["i"] for e in cap.events] == [0, 1, 2, 3]
    assert cap.events_dropped == 16


def test_the_count_budget_counts_dropped_events_too() -> None:
    cap = OutputCapture(1000, max_events=3)
    cap.feed("".join(f'@@{{"i": {i}}}\n' for i in range(5)))
    cap.close()
    assert ([e["i"] for e in cap.events], cap.events_dropped) == ([0, 1, 2], 2)
