"""Validators at the door: host names, header values, form integers, integer
parameters, size limits and the NUL check on decoded bodies."""

from __future__ import annotations

import json
from email.message import Message
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muster.config import Settings
from muster.domain.hostnames import check_host_name, host_name_problem
from muster.domain.params import INT_MAX, INT_MIN, ParameterSpec, ParameterType, coerce_value
from muster.errors import ParameterError, ValidationError
from muster.server.header_values import attachment, parse_event_id
from muster.server.input_guard import _body_nul
from muster.server.limits import check_command, check_parameter_values, check_script, human_bytes
from muster.server.web.forms import form_int

# -- host names ------------------------------------------------------------------------

GOOD_NAMES = [
    "web1",
    "web-1.example.com",
    "db_primary",
    "_sip",
    "10.0.0.1",
    "W" * 63,
    ".".join(["a" * 63] * 3) + "." + "b" * 61,  # 253 characters
]
BAD_NAMES = [
    ("", "empty"),
    ("web\r\n1", "only letters"),
    ('web"1', "only letters"),
    ("web 1", "only letters"),
    ("web/1", "only letters"),
    ("web:22", "only letters"),
    ("web*", "only letters"),
    ("é", "only letters"),
    ("-rf", "start or end with '-'"),
    ("web-", "start or end with '-'"),
    ("a..b", "empty label"),
    ("a.", "empty label"),
    ("x" * 64, "at most 63"),
    (".".join(["a" * 63] * 4), "at most 253"),
]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_good_host_names_pass(name: str) -> None:
    assert host_name_problem(name) is None
    assert check_host_name(name) == name


@pytest.mark.parametrize(("name", "problem"), BAD_NAMES)
def test_bad_host_names_are_named_in_the_error(name: str, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        check_host_name(name, field="name")
    assert problem in caught.value.message
    assert caught.value.field == "name"
    if name and len(name) <= 253:
        assert repr(name) in caught.value.message  # the name, with control characters escaped


@given(st.text(max_size=80))
def test_an_accepted_name_is_safe_in_a_header_a_path_and_a_selector(name: str) -> None:
    if host_name_problem(name) is None:
        assert name.isascii() and name.isprintable()
        assert not set(name) & set(" \"';:,/\\*?[]!&~=%\r\n\t")
        assert not name.startswith("-")


# -- header values ---------------------------------------------------------------------


def _disposition(value: str) -> Message:
    message = Message()
    message["Content-Disposition"] = value
    return message


@pytest.mark.parametrize(
    "filename",
    [
        'e1-evil"; filename="owned.sh-stdout.log',
        "e1-crlf\r\nX-Injected: 1-stdout.log",
        "e1-naïve ünïcode-stdout.log",
        "e1-web1-stdout.log",
    ],
)
def test_content_disposition_carries_any_name_safely(filename: str) -> None:
    value = attachment(filename)
    assert value.isascii() and "\r" not in value and "\n" not in value
    parsed = _disposition(value)
    assert parsed.get_content_disposition() == "attachment"
    assert value.count("filename=") == 1 and value.count("filename*=") == 1
    fallback = parsed.get_param("filename", header="content-disposition")
    assert isinstance(fallback, str) and '"' not in fallback and ";" not in fallback
    exact = value.split("filename*=UTF-8''", 1)[1]
    assert unquote(exact) == filename


def test_plain_names_keep_their_fallback_unchanged() -> None:
    assert attachment("e1-web1-stdout.log") == (
        "attachment; filename=\"e1-web1-stdout.log\"; filename*=UTF-8''e1-web1-stdout.log"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("42", 42),
        (" 42 ", 42),
        (str(2**63 - 1), 2**63 - 1),
        (str(2**63), None),
        (str(2**70), None),
        ("²", None),
        ("٣", None),
        ("-1", None),
        ("abc", None),
        ("", None),
    ],
)
def test_event_ids_are_ascii_digits_within_64_bits(text: str, expected: int | None) -> None:
    assert parse_event_id(text) == expected


# -- form integers and integer parameters ----------------------------------------------


@pytest.mark.parametrize("text", ["abc", "", "1.5", "-1", "0", "²", str(2**31), str(2**70), "1e3"])
def test_form_integers_outside_the_range_name_the_field(text: str) -> None:
    with pytest.raises(ValidationError) as caught:
        form_int(text, field="version", low=1, high=2**31 - 1)
    assert caught.value.field == "version" and "version" in caught.value.problems


def test_form_integers_inside_the_range_pass() -> None:
    assert form_int(" 7 ", field="version", low=1, high=2**31 - 1) == 7
    assert form_int(str(2**31 - 1), field="v", low=1, high=2**31 - 1) == 2**31 - 1


@pytest.mark.parametrize("raw", [2**63, -(2**63) - 1, str(2**70), float(2**64), "9" * 5000])
def test_integer_parameters_are_64_bit(raw: object) -> None:
    spec = ParameterSpec("n", type=ParameterType.INTEGER)
    with pytest.raises(ParameterError, match="parameter 'n'"):
        coerce_value(spec, raw)


def test_integer_parameters_at_the_64_bit_edges_pass() -> None:
    spec = ParameterSpec("n", type=ParameterType.INTEGER)
    assert coerce_value(spec, INT_MAX) == INT_MAX
    assert coerce_value(spec, str(INT_MIN)) == INT_MIN


# -- field sizes -----------------------------------------------------------------------


def test_field_limits_count_utf8_bytes_and_name_field_and_limit() -> None:
    settings = Settings(max_script_bytes=10, max_command_bytes=4, max_parameter_bytes=3)
    check_script(settings, "é" * 5)  # 10 bytes: at the limit
    with pytest.raises(ValidationError, match="12 bytes; the limit is 10 bytes") as caught:
        check_script(settings, "é" * 6)
    assert caught.value.field == "body"
    with pytest.raises(ValidationError) as caught:
        check_script(settings, "ok", [("a", None), ("b", "long")])
    assert caught.value.field == "parameters.1.default"
    with pytest.raises(ValidationError) as caught:
        check_command(settings, "uname")
    assert caught.value.field == "command"
    check_parameter_values(settings, {"n": 10**12, "s": "abc"})
    with pytest.raises(ValidationError, match="parameter 's'") as caught:
        check_parameter_values(settings, {"s": "abcd"})
    assert caught.value.field == "parameter_values.s"


def test_human_bytes() -> None:
    assert human_bytes(1024 * 1024) == "1 MiB"
    assert human_bytes(64 * 1024) == "64 KiB"
    assert human_bytes(1500) == "1500 bytes"


# -- NUL on decoded values -------------------------------------------------------------

JSON = b"application/json"
FORM = b"application/x-www-form-urlencoded"


def test_text_that_spells_an_escape_is_not_a_nul() -> None:
    body = json.dumps({"body": "printf '\\u0000'"}).encode()
    assert b"\\\\u0000" in body  # the raw JSON holds the escape's text
    assert _body_nul(JSON, body) == (False, None)
    assert _body_nul(FORM, b"body=echo+%2500") == (False, None)


@pytest.mark.parametrize(
    ("content_type", "body", "field"),
    [
        (JSON, json.dumps({"body": "a\x00b"}).encode(), "body"),
        (
            JSON,
            json.dumps({"parameter_values": {"msg": ["x", "y\x00"]}}).encode(),
            "parameter_values.msg.1",
        ),
        (JSON, json.dumps({"k\x00": 1}).encode(), None),
        (JSON, b'{"body": "a\x00"}', None),
        (FORM, b"name=x&body=a%00b", "body"),
    ],
)
def test_a_decoded_nul_is_found_with_its_field(
    content_type: bytes, body: bytes, field: str | None
) -> None:
    assert _body_nul(content_type, body) == (True, field)


def test_undecodable_or_deep_bodies_pass_on_to_the_route() -> None:
    assert _body_nul(JSON, b'{"body": "\\u0000",') == (False, None)
    deep = b"[" * 100_000 + b'"\\u0000"' + b"]" * 100_000
    assert _body_nul(JSON, deep) == (False, None)  # too deep to decode: the route refuses it
