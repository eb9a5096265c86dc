"""The compilation cache changes how long a run takes, never what it finds: the notebooks that time,
explain or count compilations (and Haiku's, the largest programs) run cold, with an empty cache,
then warm, and ``invoke compare`` finds the two runs in agreement. Nothing lands in the checkout."""

from __future__ import annotations

import json
import subprocess

from helpers import invoke

from labkit import paths, runner

# 04 and 13 time compilations, 14 counts jit's cache misses, 08 compiles the largest programs.
NOTEBOOKS = ["04_jit_mechanics", "08_haiku", "13_control_flow", "14_debugging"]


def checkout_status() -> str:
    return subprocess.run(
        ["git", "-C", str(paths.ROOT), "status", "--porcelain", "--ignored"], capture_output=True, text=True
    ).stdout


def test_a_warm_run_loads_what_a_cold_one_compiled_and_compare_finds_them_alike(tmp_path, monkeypatch, backend):
    monkeypatch.setenv("JAXLAB_CACHE_DIR", str(tmp_path / "cache"))
    before = checkout_status()
    runs = {}
    for phase in ("cold", "warm"):
        lab = runner.run_lab(
            backend, NOTEBOOKS, {"smoke": "true"}, out=tmp_path / phase, checks=False, show_progress=False
        )
        assert lab.ok, [(s.name, s.error) for s in lab.steps if not s.ok]
        runs[phase] = json.loads((tmp_path / phase / "results.json").read_text())
    assert checkout_status() == before  # the cache, and anything else, went elsewhere

    assert runs["cold"]["run"]["compile_cache"]["warm"] is False
    assert runs["warm"]["run"]["compile_cache"]["warm"] is True
    tally = {phase: [nb["compilation"] for nb in run["notebooks"].values()] for phase, run in runs.items()}
    assert sum(t["loaded"] for t in tally["warm"]) > sum(t["loaded"] for t in tally["cold"])
    # Haiku's programs all load; the cells that time compilation compile again
    # (labkit.timing.real_compilations). 14's programs with host callbacks (jax.debug.print) are
    # never cached by JAX, so they compile in every run.
    compiled_again = {
        name: nb["compilation"]["programs"] - nb["compilation"]["loaded"]
        for name, nb in runs["warm"]["notebooks"].items()
    }
    assert compiled_again["08_haiku"] == 0, compiled_again
    assert compiled_again["04_jit_mechanics"] > 0 and compiled_again["13_control_flow"] > 0, compiled_again

    done = invoke("compare", str(tmp_path / "cold"), str(tmp_path / "warm"), "--out", str(tmp_path / "report"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
