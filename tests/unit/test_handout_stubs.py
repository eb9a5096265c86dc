"""What a handout puts in place of an answer, and what a learner meets when they use it."""

from __future__ import annotations

import re

import numpy as np
import pytest

from labkit import handouts
from labkit.notebook import CheckFailed, Lab, pending

EXERCISE = handouts.Exercise(3, "Two helpers", [0])
MESSAGE = re.escape("Exercise 3 (Two helpers): your answer goes here")


def run(code: str) -> dict:
    namespace = {"labkit": __import__("labkit")}
    exec(code, namespace)
    return namespace


def test_functions_keep_their_signatures_and_raise_the_exercises_message_when_called():
    answer = "def a(x):\n    return x + 1\n\n\n@staticmethod\ndef b(y, *, k=2):\n    return y"
    code = handouts.stub(EXERCISE, answer, "")
    namespace = run(code)
    for call in (lambda: namespace["a"](1), lambda: namespace["b"].__func__(2)):
        with pytest.raises(NotImplementedError, match=MESSAGE):
            call()
    assert "return" not in code


def test_names_are_bound_to_a_pending_answer_that_raises_when_used():
    namespace = run(handouts.stub(EXERCISE, "total = 1 + 2\ntotal = total * 2\nshape: tuple = (3,)", ""))
    with pytest.raises(NotImplementedError, match=MESSAGE):
        namespace["total"] + 1
    with pytest.raises(NotImplementedError, match=MESSAGE):
        np.asarray(namespace["shape"])


def test_any_other_answer_raises_at_once():
    code = handouts.stub(EXERCISE, "for i in range(3):\n    print(i)", "    ")
    assert code.startswith("    raise NotImplementedError(") and handouts.message(EXERCISE) in code


def test_a_check_of_a_pending_answer_fails_with_the_exercises_message(capsys):
    lab = Lab("99_x", "cpu", {}, "", {})
    with pytest.raises(NotImplementedError, match=MESSAGE):
        lab.check("total", pending(3, handouts.message(EXERCISE)), np.ones(3))
    with pytest.raises(CheckFailed, match="expected shape \\(3,\\), got \\(2,\\)\nhint: mind the axis"):
        lab.check("total", np.ones(2, np.float32), np.ones(3), hint="mind the axis")
    with pytest.raises(CheckFailed, match="1 of 3 elements differ .* index \\[1\\]: got 5"):
        lab.check("total", np.array([1.0, 5.0, 1.0], np.float32), np.ones(3))
    lab.check("total", np.ones(3, np.float32), np.ones(3))
    assert capsys.readouterr().out.strip() == "✓ total"


def test_a_wrong_scalar_says_which_way_and_roughly_how_far_but_not_the_answer():
    lab = Lab("99_x", "cpu", {}, "", {})
    with pytest.raises(CheckFailed) as too_small:
        lab.check("loss", np.float32(0.0243), 2.6143)
    text = str(too_small.value)
    assert "too small" in text and "more than 100,000 times the float32 tolerance" in text
    assert "2.6" not in text and "2.59" not in text  # neither the answer nor the difference
    with pytest.raises(CheckFailed, match="too large, by less than 10 times"):
        lab.check("loss", np.float32(1.000004), 1.0)


def test_a_failed_check_names_the_earlier_exercise_whose_check_failed_first():
    lab = Lab("99_x", "cpu", {}, "", {})
    lab.exercise = 5
    with pytest.raises(CheckFailed) as fifth:
        lab.check("step", np.float32(1.0), 2.0)
    assert "first fix" not in str(fifth.value)
    lab.exercise = 7
    with pytest.raises(CheckFailed, match="first fix exercise 5: its check failed too \\(check 'step'\\)"):
        lab.check_true("final_loss", False, hint="params must hold the parameters of the last step")
    lab._unresolved.pop(5)  # exercise 5 checked again and passed: exercise 7 stands alone
    with pytest.raises(CheckFailed) as alone:
        lab.check_true("final_loss", False)
    assert "first fix" not in str(alone.value)


@pytest.mark.parametrize(
    ("answer", "after", "left"),
    [
        # a stub function raises where it is first called: what came before that ran already
        ("def f(x):\n    return x", "a = draw()\nb = f(a)\nprint(b)", "b = f(a)\nprint(b)"),
        # a placeholder raises where it is first used
        ("z = 3", "print('z is')\nprint(z + 1)", "print(z + 1)"),
        # any other answer stopped the cell at the stub: all of the rest is left
        ("for i in range(3):\n    total = i", "a = draw()\nprint(total)", "a = draw()\nprint(total)"),
        # a decorated statement that uses it is left whole, decorators included
        ("def f(x):\n    return x", "a = draw()\n@register\nclass C:\n    g = f", "@register\nclass C:\n    g = f"),
        # the answer is only used by the check cell: nothing of the rest is left
        ("def f(x):\n    return x", "a = draw()", ""),
    ],
)
def test_a_solution_runs_only_what_the_stub_stopped(answer, after, left):
    assert handouts._left_to_run(answer, after) == left


def test_right_values_as_a_python_list_pass_and_a_wrong_list_says_its_type():
    lab = Lab("99_x", "cpu", {}, "", {})
    right = np.linspace(0, 1, 600, dtype=np.float32)
    lab.check("values", right.tolist(), right.astype(np.float64) + 1e-8)  # float32 values, as a list
    with pytest.raises(CheckFailed, match="got a list, compared as float32"):
        lab.check("values", (right + 1).tolist(), right.astype(np.float64))


def test_a_dtype_without_a_tolerance_is_one_clear_failure():
    lab = Lab("99_x", "cpu", {}, "", {})
    with pytest.raises(CheckFailed, match="got float128 values, which the lab has no tolerance for"):
        lab.check("x", np.ones(3, np.longdouble), np.ones(3))


def test_start_with_a_name_that_is_no_notebook_is_one_line():
    import labkit

    with pytest.raises(labkit.UsageError, match="labkit.start\\('nosuch'\\): no such notebook"):
        labkit.start("nosuch", {"backend": "cpu"})


@pytest.mark.parametrize("number", [99, "x", -1])
def test_a_solution_that_does_not_exist_is_a_lab_error_which_a_kernel_shows_in_one_line(number):
    import labkit

    lab = Lab("01_jax_vs_numpy", "cpu", {}, "", {})
    with pytest.raises(labkit.LabError, match="01_jax_vs_numpy has exercises 1 to 6, not"):
        lab.solution(number)
