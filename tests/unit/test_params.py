"""Parameters are checked against each notebook's declared ones before anything runs."""

import pytest
from helpers import FIXTURES

from labkit import UsageError, params

OK = FIXTURES / "01_ok.ipynb"


def test_declared_reads_types_defaults_and_help():
    decl = params.declared(OK)
    assert set(params.CORE) <= set(decl)
    assert decl["seed"]["type"] == "int" and decl["seed"]["default"] == "0"
    assert decl["smoke"]["type"] == "bool"
    assert "seed" in decl["seed"]["help"].lower()


@pytest.mark.parametrize("item", ["seed", "=1", "two words=1", ""])
def test_malformed_assignment_is_a_usage_error(item):
    with pytest.raises(UsageError, match="malformed parameter"):
        params.parse_assignments([item])


def test_assignment_keeps_everything_after_the_first_equals():
    assert params.parse_assignments(["note=a=b", "seed=3"]) == {"note": "a=b", "seed": "3"}


def test_values_are_converted_to_the_declared_type():
    resolved = params.resolve([OK], {"seed": "7", "smoke": "true"})
    assert resolved == {"01_ok": {"seed": 7, "smoke": True}}


def test_unknown_parameter_names_notebooks_and_allowed_names():
    with pytest.raises(UsageError) as err:
        params.resolve([OK], {"sede": "1"})
    message = str(err.value)
    assert "'sede'" in message and "01_ok" in message and "seed" in message and "smoke" in message


@pytest.mark.parametrize(
    "name,value,expected",
    [("seed", "abc", "expects an int"), ("seed", "1.5", "expects an int"), ("smoke", "maybe", "expects true or false")],
)
def test_ill_typed_value_names_notebook_parameter_and_type(name, value, expected):
    with pytest.raises(UsageError) as err:
        params.resolve([OK], {name: value})
    assert str(err.value).startswith("01_ok: parameter") and f"'{name}'" in str(err.value)
    assert expected in str(err.value)


@pytest.mark.parametrize("name", params.RUNNER_SET)
def test_parameters_the_runner_sets_are_refused(name):
    with pytest.raises(UsageError, match="set by the lab itself"):
        params.resolve([OK], {name: "x"})


def test_typed_python_values_are_checked_too():
    assert params.resolve([OK], {"seed": 3})["01_ok"]["seed"] == 3
    with pytest.raises(UsageError, match="expects int"):
        params.resolve([OK], {"seed": 2.5})
