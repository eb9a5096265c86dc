"""The backend registry is the one home of backend facts, and its facts hold together."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from labkit import BACKENDS, UsageError, get_backend, tolerance


@pytest.mark.parametrize("name", list(BACKENDS))
def test_platform_list_names_the_accelerator_first_then_the_cpu_for_host_callbacks(name):
    platforms = BACKENDS[name].jax_platforms
    assert platforms[-1] == "cpu", "host callbacks (jax.debug.print, io_callback) need the cpu platform"
    assert len(set(platforms)) == len(platforms)
    if BACKENDS[name].platform != "cpu":
        assert platforms[0] != "cpu", "JAX must default to the accelerator, not to the cpu"


@pytest.mark.parametrize("name", list(BACKENDS))
def test_backend_computes_float32_and_names_only_dtypes_the_tolerance_table_knows(name):
    dtypes = BACKENDS[name].dtypes
    assert "float32" in dtypes
    assert set(dtypes) <= set(tolerance.DEFAULT), set(dtypes) - set(tolerance.DEFAULT)


def test_the_reference_backend_computes_every_dtype_the_checks_use():
    """The checked-in references come from the cpu backend: a dtype it drops is checked nowhere."""
    from labkit.consistency import test_transforms as checks  # JAX: imported by the tests that use it

    used = {np.dtype(dt).name for case in checks.CASES for dt in case.dtypes}
    assert used <= set(BACKENDS["cpu"].dtypes), used - set(BACKENDS["cpu"].dtypes)


@pytest.mark.parametrize("key", list(tolerance.EXCEPTIONS))
def test_every_exception_is_looser_than_its_default_and_gives_its_reason(key):
    backend, dtype = key
    allowance = tolerance.EXCEPTIONS[key]
    default, loosened = tolerance.tolerance(dtype), tolerance.tolerance(dtype, backend)
    assert allowance.reason.strip()
    assert loosened == (allowance.atol, allowance.rtol)
    assert loosened[0] >= default[0] and loosened[1] >= default[1] and loosened != default, (
        f"{backend}/{dtype}: {loosened} is not looser than the default {default}"
    )
    assert dtype in BACKENDS[backend].dtypes, f"{backend} has a bound for {dtype}, which it does not compute"


def test_an_unknown_backend_is_an_error_everywhere_it_is_looked_up():
    unknown = "-".join(BACKENDS) + "-not-one"
    with pytest.raises(UsageError, match=f"unknown backend '{unknown}'; valid backends: {', '.join(BACKENDS)}$"):
        get_backend(unknown)
    from labkit.consistency import test_transforms as checks

    with pytest.raises(UsageError):
        checks.skip_unsupported(np.dtype(np.float32), unknown)


def test_a_tpu_held_by_another_kernel_is_said_in_one_line(monkeypatch):
    import jax

    from labkit import jaxsetup

    monkeypatch.setattr(type(get_backend("tpu")), "plugin_installed", lambda self: True)
    monkeypatch.setattr(jax.config, "update", lambda *a: None)
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")

    def busy():
        raise RuntimeError(
            "Unable to initialize backend 'tpu': ABORTED: The TPU is already in use by process "
            "with pid 4242. Not attempting to load libtpu.so in this process."
        )

    monkeypatch.setattr(jax, "default_backend", busy)
    with pytest.raises(jaxsetup.BackendMismatch) as err:
        jaxsetup.setup("tpu")
    message = str(err.value)
    assert "\n" not in message and "held by process 4242" in message and "only one process at a time" in message


SETUP_PLATFORMS = """
import os, labkit
from labkit import backends
backends.Backend.plugin_installed = lambda self: True  # no plugin here: get as far as JAX's own start
try:
    labkit.setup({name!r})
except labkit.LabError:
    pass  # no device here either; what matters is what JAX was told
print(os.environ["JAX_PLATFORMS"])
"""


@pytest.mark.parametrize("name", [n for n, b in BACKENDS.items() if b.platform != "cpu"])
def test_setup_starts_jax_with_the_accelerator_first_and_the_cpu_for_host_callbacks(name):
    """What broke 04_jit_mechanics on the first GPU: jax.debug.print inside jit needs the cpu platform."""
    done = subprocess.run(
        [sys.executable, "-c", SETUP_PLATFORMS.format(name=name)], capture_output=True, text=True, timeout=120
    )
    platforms = done.stdout.strip().split(",")
    assert platforms[0] == BACKENDS[name].jax_platforms[0] and "cpu" in platforms, done.stdout + done.stderr


@pytest.mark.parametrize("name", list(BACKENDS))
def test_the_runner_shares_the_device_only_as_far_as_the_backend_allows(name, monkeypatch):
    from labkit import checks_phase, plan

    monkeypatch.setattr(plan, "cpu_count", lambda: 16)
    steps = 10 + len(checks_phase.CHECK_SESSIONS)  # ten notebooks and the checks' sessions
    at_once = plan.slots(name, None, steps)
    limit = BACKENDS[name].processes_at_once
    assert at_once == (min(limit, steps) if limit else steps)
    assert plan.slots(name, 4, steps) == min(4, limit or 4)  # --jobs never lifts the device's limit
    assert plan.slots(name, None, 1) == 1


def test_a_plugin_that_finds_no_device_never_lets_jax_fall_back_to_the_cpu(monkeypatch):
    """With cpu listed for host callbacks, a CUDA plugin that finds no GPU leaves JAX on the CPU
    (as in jaxlab:cuda without a GPU): labkit.setup refuses, in one line."""
    import jax

    from labkit import jaxsetup

    monkeypatch.setattr(type(get_backend("cuda")), "plugin_installed", lambda self: True)
    monkeypatch.setattr(jax.config, "update", lambda *a: None)
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    monkeypatch.setattr(jax, "default_backend", lambda: "cpu")
    with pytest.raises(jaxsetup.BackendMismatch) as err:
        jaxsetup.setup("cuda")
    message = str(err.value)
    assert "\n" not in message and "JAX runs on 'cpu'" in message and "refusing to fall back silently" in message
    assert "--gpus all" in message
