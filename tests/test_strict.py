"""``potlab.strict.as_now``: an old settings record read as its model is now."""

from __future__ import annotations

from pydantic import Field

from potlab.strict import StrictModel, as_now


class Settings(StrictModel):
    steps: int = 100
    thermostat: str = "langevin"
    shape: tuple[int, int] = (1, 2)
    base_dir: str = "."
    seed: int = 0
    tags: list[str] = Field(default_factory=list)


def test_a_field_the_record_lacks_takes_its_default():
    assert as_now({"steps": 7}, Settings) == {
        "steps": 7, "thermostat": "langevin", "shape": [1, 2], "base_dir": ".", "seed": 0,
        "tags": []}


def test_given_fields_are_used_to_validate_and_left_out_with_the_excluded():
    got = as_now({"steps": 7, "seed": 3}, Settings, given={"base_dir": "/x"}, exclude=["seed"])
    assert got == {"steps": 7, "thermostat": "langevin", "shape": [1, 2], "tags": []}


def test_a_record_that_no_longer_validates_is_none():
    assert as_now({"stepz": 7}, Settings) is None           # a setting since renamed
    assert as_now({"steps": "many"}, Settings) is None      # a type since changed
    assert as_now({"shape": [1, 2, 3]}, Settings) is None


def test_a_record_at_the_defaults_equals_the_defaults_written_out():
    full = as_now({}, Settings)
    assert as_now(full, Settings) == full == as_now({"thermostat": "langevin"}, Settings)
    assert as_now({"thermostat": "berendsen"}, Settings) != full
