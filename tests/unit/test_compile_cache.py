"""The compilation cache (labkit.compile_cache): a second process loads what the first compiled,
a cell that times compilation compiles for real, --no-cache keeps nothing, the cache never lands
in the checkout, and clean-cache empties only what JAX wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from helpers import invoke

from labkit import compile_cache, paths

# One process of a kernel's life: start JAX as the lab does, compile a program, then the same
# program again under real_compilations(), then once more after it; print the tallies between.
PROCESS = """
import json, labkit
from labkit.compile_cache import tally
from labkit.timing import real_compilations
jax = labkit.setup("cpu")
import jax.numpy as jnp
def program(v):
    return jnp.sum(jnp.sin(v) * 3.0 + 1.0)
steps = {}
jax.jit(lambda v: program(v))(jnp.ones(7)).block_until_ready()
steps["first"] = tally()
with real_compilations():
    jax.jit(lambda v: program(v))(jnp.ones(7)).block_until_ready()
steps["real"] = tally()
jax.jit(lambda v: program(v))(jnp.ones(7)).block_until_ready()
steps["after"] = tally()
print(json.dumps(steps))
"""


def kernel_like(cache_dir, **env) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROCESS],
        env=dict(os.environ, JAXLAB_CACHE_DIR=str(cache_dir), **env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def loaded(steps: dict, step: str, before: str | None) -> int:
    return steps[step]["loaded"] - (steps[before]["loaded"] if before else 0)


def test_a_second_process_loads_what_the_first_compiled_but_never_under_real_compilations(tmp_path):
    cold = kernel_like(tmp_path)
    assert loaded(cold, "first", None) == 0 and cold["first"]["programs"] > 0  # nothing to load yet
    assert loaded(cold, "real", "first") == 0  # compiled, though the cache held it by then
    assert loaded(cold, "after", "real") > 0  # the cache is back on after the block
    where = tmp_path / "xla" / compile_cache.folder("cpu").name
    assert compile_cache.programs(where) > 0

    warm = kernel_like(tmp_path)
    assert loaded(warm, "first", None) == warm["first"]["programs"] > 0  # everything loaded
    assert loaded(warm, "real", "first") == 0


def test_off_keeps_nothing_and_loads_nothing(tmp_path):
    kernel_like(tmp_path)
    off = kernel_like(tmp_path, JAXLAB_COMPILE_CACHE="off")
    assert off["after"]["loaded"] == 0 and off["after"]["programs"] > 0


def test_a_cache_folder_in_the_checkout_is_refused_before_any_work(tmp_path):
    done = invoke(
        "lab",
        "--runtime",
        "local",
        "--out",
        str(tmp_path / "run"),
        env=dict(os.environ, JAXLAB_CACHE_DIR=str(paths.ROOT / "cache")),
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "the compilation cache would land in the checkout" in done.stderr
    assert not (paths.ROOT / "cache").exists() and not (tmp_path / "run").exists()


def test_clean_cache_empties_what_jax_wrote_and_leaves_anything_else(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXLAB_CACHE_DIR", str(tmp_path))
    kernel_like(tmp_path)
    ours = tmp_path / "xla" / compile_cache.folder("cpu").name
    mine = ours / "notes.txt"  # someone's file in the lab's folder
    mine.write_text("mine")
    unmarked = tmp_path / "xla" / "elsewhere"  # a folder the lab did not make
    unmarked.mkdir()
    (unmarked / "x-cache").write_text("not the lab's")

    # No engine answers: the images' volume (the engine's, maybe in use by a container) is left alone.
    quiet = dict(os.environ, JAXLAB_CACHE_DIR=str(tmp_path), INVOKE_JAXLAB_ENGINE=str(tmp_path / "no-engine"))
    done = invoke("clean-cache", env=quiet, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in ours.iterdir()) == ["notes.txt"] and mine.read_text() == "mine"
    assert (unmarked / "x-cache").read_text() == "not the lab's"
