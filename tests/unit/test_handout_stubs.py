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
