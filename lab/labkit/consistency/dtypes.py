"""What every check module shares about dtypes: their names, the guard that runs a case only on
a backend that computes in its dtype (float64 only in the x64 session), and the cast that lets a
reference measure only the computation's own rounding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import labkit

FLOAT64 = np.dtype(np.float64)
FLOAT32 = np.dtype(np.float32)
BFLOAT16 = np.dtype(jnp.bfloat16)
FLOAT16 = np.dtype(np.float16)


def skip_unsupported(dtype: np.dtype, backend: str) -> None:
    # The registry says what each backend computes in; an unknown backend is an error there.
    if dtype.name not in labkit.get_backend(backend).dtypes:
        pytest.skip(f"{dtype.name} is not supported on backend {backend!r}")
    # float64 runs in a session of its own, with jax_enable_x64 (see labkit.consistency.plugin),
    # which deselects it elsewhere; reaching here without x64 would silently test float32.
    # JAX adds its options to jax.config at run time; its Config class declares none of them.
    x64 = jax.config.jax_enable_x64  # type: ignore[attr-defined]
    assert (dtype == FLOAT64) == bool(x64), "float64 checks need --x64"


def cast(tree, dtype):
    """(every leaf of ``tree`` in ``dtype``, the same values back in float64): inputs drawn in
    float64 are cast to the dtype under test, and the reference is computed from what the cast
    kept, so only the computation's own rounding is measured. None stays None."""
    low = jax.tree.map(lambda a: np.asarray(a, np.float64).astype(dtype), tree)
    return low, jax.tree.map(lambda a: a.astype(np.float64), low)
