"""Parameter declarations, coercion of submitted values, and their environment."""

from __future__ import annotations

import pytest

from muster.domain.params import (
    ParameterSpec,
    ParameterType,
    coerce_value,
    coerce_values,
    env_name,
    parameter_env,
)
from muster.domain.secret import Secret
from muster.errors import ParameterError

T = ParameterType


def spec(kind: ParameterType, **kw: object) -> ParameterSpec:
    return ParameterSpec("p", kind, **kw)  # type: ignore[arg-type]


# --- coercion table -----------------------------------------------------------

GOOD = [
    (T.STRING, "hello", "hello"),
    (T.STRING, "", ""),
    (T.STRING, "x y\n'$(rm)'", "x y\n'$(rm)'"),
    (T.INTEGER, "42", 42),
    (T.INTEGER, " -7 ", -7),
    (T.INTEGER, "+3", 3),
    (T.INTEGER, 5, 5),
    (T.INTEGER, 5.0, 5),
    (T.FLOAT, "1.5", 1.5),
    (T.FLOAT, "-2", -2.0),
    (T.FLOAT, ".5", 0.5),
    (T.FLOAT, "1e3", 1000.0),
    (T.FLOAT, 3, 3.0),
    (T.BOOLEAN, "true", True),
    (T.BOOLEAN, "TRUE", True),
    (T.BOOLEAN, "Yes", True),
    (T.BOOLEAN, "1", True),
    (T.BOOLEAN, "on", True),
    (T.BOOLEAN, "false", False),
    (T.BOOLEAN, "No", False),
    (T.BOOLEAN, "0", False),
    (T.BOOLEAN, "OFF", False),
    (T.BOOLEAN, True, True),
    (T.BOOLEAN, 0, False),
]


@pytest.mark.parametrize(("kind", "raw", "expected"), GOOD)
def test_good_values_coerce(kind: ParameterType, raw: object, expected: object) -> None:
    value = coerce_value(spec(kind), raw)
    assert value == expected
    assert type(value) is type(expected)
    # Coercion is idempotent: an already coerced value comes back unchanged.
    assert coerce_value(spec(kind), value) == value


BAD = [
    (T.STRING, 5, "expected text"),
    (T.STRING, "a\x00b", "NUL"),
    (T.STRING, "\ud800", "surrogate"),
    (T.INTEGER, "1.5", "expected an integer"),
    (T.INTEGER, 1.5, "expected an integer"),
    (T.INTEGER, True, "boolean"),
    (T.INTEGER, "abc", "expected an integer"),
    (T.INTEGER, "1e3", "expected an integer"),
    (T.INTEGER, "0x10", "expected an integer"),
    (T.INTEGER, "1_000", "expected an integer"),
    (T.INTEGER, "\u0663", "expected an integer"),  # an Arabic-Indic digit
    (T.INTEGER, "", "expected an integer"),
    (T.FLOAT, "nan", "expected a number"),
    (T.FLOAT, "inf", "expected a number"),
    (T.FLOAT, float("nan"), "finite"),
    (T.FLOAT, float("inf"), "finite"),
    (T.FLOAT, "1e999", "finite"),
    (T.FLOAT, 10**400, "finite"),
    (T.FLOAT, False, "boolean"),
    (T.FLOAT, "1,5", "expected a number"),
    (T.BOOLEAN, "maybe", "expected a boolean"),
    (T.BOOLEAN, 2, "expected a boolean"),
    (T.BOOLEAN, "", "expected a boolean"),
    (T.SECRET, 5, "expected text"),
    (T.SECRET, "a\x00b", "NUL"),
]


@pytest.mark.parametrize(("kind", "raw", "fragment"), BAD)
def test_bad_values_are_rejected_naming_the_parameter(
    kind: ParameterType, raw: object, fragment: str
) -> None:
    with pytest.raises(ParameterError) as err:
        coerce_value(spec(kind), raw)
    assert err.value.field == "p"
    assert "'p'" in str(err.value)
    assert fragment in str(err.value)


def test_choice_must_be_one_of_the_choices() -> None:
    s = ParameterSpec("env", T.CHOICE, choices=("dev", "prod"))
    assert coerce_value(s, "prod") == "prod"
    with pytest.raises(ParameterError, match=r"'env'.*one of dev, prod"):
        coerce_value(s, "staging")
    with pytest.raises(ParameterError):
        coerce_value(s, "PROD")


def test_secret_comes_back_wrapped_and_errors_never_show_it() -> None:
    s = ParameterSpec("token", T.SECRET)
    value = coerce_value(s, "hunter2")
    assert isinstance(value, Secret)
    assert value.reveal() == "hunter2"
    assert coerce_value(s, value) is value
    with pytest.raises(ParameterError) as err:
        coerce_value(s, "hunter2\x00")
    assert "hunter2" not in str(err.value)


def test_a_secret_cannot_be_given_to_a_plain_parameter() -> None:
    with pytest.raises(ParameterError, match="secret"):
        coerce_value(spec(T.STRING), Secret("x"))


# --- declarations ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a b", "ä", "x" * 65, "a$"])
def test_bad_names_are_rejected(name: str) -> None:
    with pytest.raises(ParameterError, match="invalid parameter name"):
        ParameterSpec(name)


def test_declaration_checks_name_the_parameter() -> None:
    with pytest.raises(ParameterError, match=r"'c'.*needs choices") as err:
        ParameterSpec("c", T.CHOICE)
    assert err.value.field == "c"
    with pytest.raises(ParameterError, match=r"'n'.*invalid default.*integer"):
        ParameterSpec("n", T.INTEGER, default="many")
    with pytest.raises(ParameterError, match=r"'s'.*secret cannot have a default"):
        ParameterSpec("s", T.SECRET, default="pw")
    with pytest.raises(ParameterError, match=r"'x'.*only a choice"):
        ParameterSpec("x", T.STRING, choices=("a",))
    with pytest.raises(ParameterError, match=r"'x'.*unknown type"):
        ParameterSpec("x", "date")  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="repeat"):
        ParameterSpec("x", T.CHOICE, choices=("a", "a"))
    with pytest.raises(ParameterError, match=r"'x'.*invalid default"):
        ParameterSpec("x", T.CHOICE, choices=("a", "b"), default="c")


def test_declaration_normalises_type_and_default() -> None:
    s = ParameterSpec("n", "integer", default="5")  # type: ignore[arg-type]
    assert s.type is T.INTEGER
    assert s.default == 5
    assert s == ParameterSpec("n", T.INTEGER, default=5)
    assert ParameterSpec("f", T.FLOAT, default=1).default == 1.0
    assert ParameterSpec("b", T.BOOLEAN, default="yes").default is True
    assert ParameterSpec("c", T.CHOICE, choices=["a", "b"]).choices == ("a", "b")  # type: ignore[arg-type]


def test_spec_round_trips_through_dict() -> None:
    s = ParameterSpec("env", T.CHOICE, required=True, description="where", choices=("a", "b"))
    assert ParameterSpec.from_dict(s.to_dict()) == s
    with pytest.raises(ParameterError, match="unknown keys: colour"):
        ParameterSpec.from_dict({"name": "x", "colour": "red"})


# --- coerce_values ---------------------------------------------------------------

SPECS = (
    ParameterSpec("target", T.STRING, required=True),
    ParameterSpec("count", T.INTEGER, default=3),
    ParameterSpec("dry_run", T.BOOLEAN),
    ParameterSpec("token", T.SECRET),
)


def test_values_get_defaults_and_types() -> None:
    values = coerce_values(SPECS, {"target": "/var/www", "dry_run": "yes", "token": "pw"})
    assert values["target"] == "/var/www"
    assert values["count"] == 3
    assert values["dry_run"] is True
    assert isinstance(values["token"], Secret)


def test_optional_without_value_or_default_is_absent() -> None:
    assert coerce_values(SPECS, {"target": "x"}) == {"target": "x", "count": 3}
    # None counts as not given.
    assert coerce_values(SPECS, {"target": "x", "count": None}) == {"target": "x", "count": 3}


def test_missing_required_is_named() -> None:
    with pytest.raises(ParameterError) as err:
        coerce_values(SPECS, {})
    assert err.value.field == "target"
    assert "missing required parameter(s): target" in str(err.value)
    assert err.value.problems == {"target": "required parameter is missing"}


def test_all_problems_are_collected_at_once() -> None:
    raw = {"count": "1.5", "colour": "red", "dry_run": "maybe", "token": "pw"}
    with pytest.raises(ParameterError) as err:
        coerce_values(SPECS, raw)
    problems = err.value.problems
    assert list(problems) == ["target", "count", "dry_run", "colour"]
    assert err.value.field == "target"
    assert problems["colour"] == "unknown parameter"
    assert "expected an integer" in problems["count"]
    assert "expected a boolean" in problems["dry_run"]
    message = str(err.value)
    for name in ("target", "count", "dry_run", "colour"):
        assert name in message


def test_unknown_name_alone() -> None:
    with pytest.raises(ParameterError) as err:
        coerce_values(SPECS, {"target": "x", "colour": "red"})
    assert err.value.field == "colour"
    assert err.value.problems == {"colour": "unknown parameter"}


# --- environment -------------------------------------------------------------------


def test_env_names() -> None:
    assert env_name("target") == "MUSTER_PARAM_TARGET"
    assert env_name("dry_Run2") == "MUSTER_PARAM_DRY_RUN2"


def test_parameter_env_has_every_declared_parameter() -> None:
    specs = (*SPECS, ParameterSpec("ratio", T.FLOAT), ParameterSpec("note", T.STRING))
    values = coerce_values(
        specs, {"target": "/srv", "dry_run": "off", "token": "pw", "ratio": "0.1"}
    )
    env = parameter_env(specs, values)
    assert env == {
        "MUSTER_PARAM_TARGET": "/srv",
        "MUSTER_PARAM_COUNT": "3",
        "MUSTER_PARAM_DRY_RUN": "false",
        "MUSTER_PARAM_TOKEN": Secret("pw"),
        "MUSTER_PARAM_RATIO": "0.1",
        "MUSTER_PARAM_NOTE": "",
    }
    assert isinstance(env["MUSTER_PARAM_TOKEN"], Secret)


def test_absent_secret_env_is_an_empty_secret() -> None:
    env = parameter_env(SPECS, {"target": "x"})
    assert env["MUSTER_PARAM_TOKEN"] == Secret("")
