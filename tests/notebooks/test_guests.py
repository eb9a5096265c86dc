"""Notebooks written elsewhere run as guests (labkit.guest): no parameters, the backend from the
environment, cells tagged raises-exception may raise, any other error fails the run naming its cell.
The tests make their own notebooks; no third party's notebook is shipped."""

from __future__ import annotations

import json

import nbformat
import pytest
from helpers import invoke
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def notebook(path, *sources: str, raises: tuple[int, ...] = ()):
    cells = [new_markdown_cell("# written elsewhere: no parameters cell, no labkit")]
    for i, source in enumerate(sources):
        cell = new_code_cell(source)
        if i in raises:
            cell.metadata["tags"] = ["raises-exception"]
        cells.append(cell)
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": kernel}), path)
    return path


@pytest.fixture(scope="module")
def guest_run(tmp_path_factory):
    where = tmp_path_factory.mktemp("guests")
    good = notebook(
        where / "tutorial.ipynb",
        "import jax, jax.numpy as jnp\n"
        "print(jax.default_backend(), jax.device_count())\n"
        "print(jnp.sum(jnp.arange(10.0)))",
        "x = jnp.arange(3.0)\nx[0] = 1.0  # JAX arrays are immutable: this raises, as the cell's tag says",
        "print('after the raising cell', float(jnp.mean(x)))",
        raises=(1,),
    )
    broken = notebook(
        where / "broken.ipynb",
        "print('fine')",
        "raise ValueError('meant to be caught by its tag')",
        "1 / 0",
        "print('never reached')",
        raises=(1,),
    )
    missing = notebook(where / "needs_more.ipynb", "import a_package_nobody_has")
    optional = notebook(  # a library asking for an optional package, as scipy.datasets asks for pooch
        where / "needs_optional.ipynb", "raise ImportError(\"Missing optional dependency 'pooch' required here.\")"
    )
    out = where / "out"
    result = invoke(
        "lab", "--runtime", "local", "--no-checks", "--no-compare", "--out", str(out),
        *(arg for nb in (good, broken, missing, optional) for arg in ("-n", str(nb))),
    )  # fmt: skip
    return result, out, json.loads((out / "results.json").read_text())


def test_a_tagged_cell_may_raise_and_the_backend_comes_from_the_environment(guest_run):
    _, out, results = guest_run
    steps = {s["name"]: s for s in results["run"]["steps"]}
    assert steps["tutorial"]["status"] == "passed", steps["tutorial"]
    cells = results["notebooks"]["tutorial"]["cells"]
    assert cells[0]["text"].splitlines() == ["cpu 8", "45.0"]  # the image's platform and simulated devices
    assert cells[1]["raises"] and "TypeError" in cells[1]["text"]
    assert cells[2]["text"].startswith("after the raising cell")
    assert all(c["seconds"] is not None and c["seconds"] >= 0 for c in cells)  # per-cell times
    kept = nbformat.read(out / "notebooks" / "tutorial.ipynb", as_version=4)  # outputs kept
    assert "45.0" in kept.cells[1].outputs[-1]["text"]


def test_an_untagged_error_fails_the_run_naming_its_cell(guest_run):
    result, _, results = guest_run
    assert result.returncode == 1
    broken = {s["name"]: s for s in results["run"]["steps"]}["broken"]
    assert broken["status"] == "failed" and broken["cell"] == 4, broken  # the notebook's 4th cell: 1 / 0
    assert broken["error"] == "ZeroDivisionError: division by zero" and broken["cell_source"] == "1 / 0"


@pytest.mark.parametrize(("name", "package"), [("needs_more", "a_package_nobody_has"), ("needs_optional", "pooch")])
def test_a_missing_package_is_one_line_that_names_it_and_says_how_to_add_it(guest_run, name, package):
    _, _, results = guest_run
    step = {s["name"]: s for s in results["run"]["steps"]}[name]
    assert step["status"] == "failed" and "\n" not in step["error"]
    assert step["error"].startswith(f"needs the package {package!r}, which this environment lacks: pip install it")


def test_a_guest_beside_a_lab_notebook_leaves_the_verdict_to_the_lab_s_own(tmp_path):
    guest = notebook(tmp_path / "mine.ipynb", "print(sum(range(10)))")
    out = tmp_path / "out"
    result = invoke("lab", "--runtime", "local", "--no-checks", "-n", "00", "-n", str(guest), "--out", str(out))
    assert result.returncode == 0, (result.stdout + result.stderr)[-2000:]
    run = json.loads((out / "results.json").read_text())["run"]
    assert run["ok"] and "agree with the CPU reference" in run["verdict"]
