"""Checks across process boundaries: a global array assembled from each process's rows, a psum
and an all-gather over the devices of every process, and a data-parallel gradient averaged across
processes, each against float64 NumPy.

They run in every lab session (one process), and, marked ``across_processes``, in each process of
``invoke lab --processes N``, where every process runs them in the same order (each is a collective
that all processes must enter). Inputs depend only on the seed and the global device count, so one
process and several must agree within the tolerance table.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import labkit
from labkit.consistency.dtypes import BFLOAT16, FLOAT32, FLOAT64, cast, skip_unsupported

pytestmark = [pytest.mark.consistency, pytest.mark.across_processes]

SEED = 20261206
AXIS = "p"
PER_DEVICE = 6  # rows per device


@pytest.fixture(scope="module")
def mesh():
    return jax.make_mesh((jax.device_count(),), (AXIS,))


def my_rows(sharding: jax.sharding.Sharding, shape: tuple[int, ...]) -> slice:
    """The rows of a global array of ``shape`` that this process holds under ``sharding``."""
    rows = [index[0] for index in sharding.addressable_devices_indices_map(shape).values() if index]
    return slice(min(r.start for r in rows), max(r.stop for r in rows))


def global_array(mesh, full: np.ndarray) -> jax.Array:
    """``full`` as one array over every process's devices, each process passing only its rows."""
    sharding = NamedSharding(mesh, P(AXIS, *([None] * (full.ndim - 1))))
    return jax.make_array_from_process_local_data(sharding, full[my_rows(sharding, full.shape)])


def draw(shape: tuple[int, ...], salt: int) -> np.ndarray:
    return np.random.default_rng([SEED, salt]).standard_normal(shape)


def test_every_process_sees_every_device():
    owners = [d.process_index for d in jax.devices()]
    assert sorted(set(owners)) == list(range(jax.process_count()))
    mine = [d.id for d in jax.devices() if d.process_index == jax.process_index()]
    assert [d.id for d in jax.local_devices()] == mine
    counts = multihost_utils.process_allgather(np.int32(jax.local_device_count()))
    assert int(np.sum(counts)) == jax.device_count(), f"local device counts {counts} do not add up"


def test_global_array_holds_each_process_rows(mesh):
    full = draw((PER_DEVICE * jax.device_count(), 3), 1).astype(np.float32)
    x = global_array(mesh, full)
    assert x.shape == full.shape
    rows = my_rows(x.sharding, full.shape)
    here = np.concatenate([np.asarray(s.data) for s in sorted(x.addressable_shards, key=lambda s: s.index[0].start)])
    np.testing.assert_array_equal(here, full[rows])


@pytest.mark.parametrize("dtype", [FLOAT64, FLOAT32, BFLOAT16], ids=lambda d: d.name)
def test_psum_across_processes(dtype, backend, mesh):
    skip_unsupported(dtype, backend)
    low, ref = cast(draw((PER_DEVICE * jax.device_count(),), 2), dtype)
    total = jax.jit(jax.shard_map(lambda b: lax.psum(jnp.sum(b), AXIS), mesh=mesh, in_specs=P(AXIS), out_specs=P()))
    with jax.set_mesh(mesh):
        got = total(global_array(mesh, low))
    labkit.assert_close(got, ref.sum(), backend=backend, accumulates=True, dtype=dtype)


@pytest.mark.parametrize("dtype", [FLOAT32, BFLOAT16], ids=lambda d: d.name)
def test_all_gather_across_processes(dtype, backend, mesh):
    skip_unsupported(dtype, backend)
    low, ref = cast(draw((PER_DEVICE * jax.device_count(),), 3), dtype)
    gather = jax.jit(
        jax.shard_map(
            lambda b: lax.all_gather(2 * b, AXIS, tiled=True, to="invarying"),
            mesh=mesh,
            in_specs=P(AXIS),
            out_specs=P(),
        )
    )
    with jax.set_mesh(mesh):
        got = gather(global_array(mesh, low))
    labkit.assert_close(got, 2 * ref, backend=backend, dtype=dtype)


@pytest.mark.parametrize("dtype", [FLOAT64, FLOAT32], ids=lambda d: d.name)
def test_data_parallel_gradient_across_processes(dtype, backend, mesh):
    skip_unsupported(dtype, backend)
    n, features = PER_DEVICE * jax.device_count(), 4
    (X, y, w), (X64, y64, w64) = cast((draw((n, features), 4), draw((n,), 5), draw((features,), 6)), dtype)

    def loss(w, X, y):
        return jnp.mean((X @ w - y) ** 2)

    def step(w, X_block, y_block):
        local = lax.pcast(w, AXIS, to="varying")
        return lax.pmean(jax.grad(loss)(local, X_block, y_block), AXIS)

    grad = jax.jit(jax.shard_map(step, mesh=mesh, in_specs=(P(), P(AXIS, None), P(AXIS)), out_specs=P()))
    with jax.set_mesh(mesh), jax.default_matmul_precision("highest"):
        got = grad(jnp.asarray(w), global_array(mesh, X), global_array(mesh, y))
    ref = 2 * X64.T @ (X64 @ w64 - y64) / n
    labkit.assert_close(got, ref, backend=backend, accumulates=True, dtype=dtype)
    copies = multihost_utils.process_allgather(np.asarray(got))
    assert np.all(copies == copies[0]), "the averaged gradient differs between processes"
