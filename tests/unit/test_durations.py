import pytest

from muster.domain.durations import parse_duration
from muster.errors import ValidationError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("2s", 2.0), ("500ms", 0.5), ("1m30s", 90.0), ("1.5", 1.5), ("0", 0.0), ("2h", 7200.0)],
)
def test_parses(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "abc", "2x", "-1", "s", "1s2", "nan", "inf"])
def test_rejects_with_field_name(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_duration(text, field="delay")
    assert info.value.field == "delay"
    assert "delay" in str(info.value)
