"""The backend registry is the one home of backend facts, and its facts hold together."""

from __future__ import annotations

import numpy as np
import pytest

from labkit import BACKENDS, UsageError, get_backend, tolerance
from labkit.consistency import test_transforms as checks


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
        f"{backend}/{dtype}: {loosened} is not looser than the default {default}")
    assert dtype in BACKENDS[backend].dtypes, f"{backend} has a bound for {dtype}, which it does not compute"


def test_an_unknown_backend_is_an_error_everywhere_it_is_looked_up():
    with pytest.raises(UsageError, match="unknown backend 'rocm'; valid backends: cpu, cuda, tpu"):
        get_backend("rocm")
    with pytest.raises(UsageError):
        checks.skip_unsupported(np.dtype(np.float32), "rocm")
