"""Cross-hardware consistency: jit, vmap, pmap, shard_map and jit with NamedSharding agree with
eager execution and with float64 NumPy references, on whatever backend ``--backend`` started.

In the style of JAX's and dm-haiku's own tests: one table of descriptors (:data:`CASES`) feeds
the same parametrised tests. Each descriptor names a JAX function of *one example* and its
NumPy float64 reference; the tests batch it over a leading axis derived from
``jax.device_count()`` (``2 * n``: two examples per device), so the same test runs on one GPU,
on 8 simulated CPU devices and on a TPU slice.

Inputs are drawn once, deterministically, in float64, then cast to the dtype under test; the
reference is computed from the cast-back inputs in float64, so only the computation's own
rounding is measured. Every bound comes from ``labkit.tolerance`` through
``labkit.assert_close``: there are no local tolerances in this file.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import labkit
from labkit.consistency.dtypes import BFLOAT16, FLOAT16, FLOAT32, FLOAT64, cast, skip_unsupported

pytestmark = pytest.mark.consistency

SEED = 20240601
AXIS = "d"  # the mesh / pmap axis name
PER_DEVICE = 2  # examples per device: the batch is PER_DEVICE * jax.device_count()

# ----------------------------------------------------------------------------------------------
# dtypes


ALL_FLOATS = (FLOAT64, FLOAT32, BFLOAT16, FLOAT16)
# float16 is checked where its narrower range and finer mantissa matter (elementwise maths,
# reductions, matmul); elsewhere it would repeat the bfloat16 checks at twice the run time.
NO_HALF = (FLOAT64, FLOAT32, BFLOAT16)

# ----------------------------------------------------------------------------------------------
# NumPy float64 references (written independently of the JAX versions)

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946
RECURRENCE_DECAY = 0.5


def np_selu(x):
    return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))


def np_logsumexp(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))


def np_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def np_logistic_grad(w, x, y):
    """d/dw of sum(softplus(x @ w) - y * (x @ w)), derived by hand: x^T (sigmoid(x @ w) - y)."""
    return x.T @ (np_sigmoid(x @ w) - y)


def np_cond(x):
    return np.sin(x) if x[0] > 0 else 2.0 * np.cos(x)


def np_recurrence(xs):
    h, out = np.zeros(xs.shape[1:]), []
    for x in xs:
        h = np.tanh(RECURRENCE_DECAY * h + x)
        out.append(h)
    return np.stack(out)


def np_mlp(params, x):
    """The Haiku MLP below, written out: tanh between layers, none after the last."""
    layers = sorted(params)  # mlp/~/linear_0, mlp/~/linear_1, ...
    for i, name in enumerate(layers):
        x = x @ params[name]["w"] + params[name]["b"]
        if i < len(layers) - 1:
            x = np.tanh(x)
    return x


# ----------------------------------------------------------------------------------------------
# JAX functions of one example


def jax_cond(x):
    return lax.cond(x[0] > 0, jnp.sin, lambda v: 2 * jnp.cos(v), x)


def jax_cumsum(xs):
    def step(carry, x):
        carry = carry + x
        return carry, carry

    return lax.scan(step, jnp.zeros_like(xs[0]), xs)[1]


def jax_recurrence(xs):
    def step(h, x):
        h = jnp.tanh(RECURRENCE_DECAY * h + x)
        return h, h

    return lax.scan(step, jnp.zeros_like(xs[0]), xs)[1]


def logistic_loss(w, x, y):
    z = x @ w
    return jnp.sum(jax.nn.softplus(z) - y * z)


MLP_IN, MLP_SIZES = 6, (16, 8, 3)
mlp: hk.Transformed = hk.without_apply_rng(hk.transform(lambda x: hk.nets.MLP(MLP_SIZES, activation=jnp.tanh)(x)))


def mlp_params():
    params = mlp.init(jax.random.PRNGKey(SEED % 2**31), jnp.zeros((MLP_IN,), jnp.float32))
    return jax.tree.map(lambda a: np.asarray(a, np.float64), params)


def alternate_first_sign(x):
    """Make the cond predicate (x[0] > 0) true for even and false for odd examples, so every
    batch, even one device's two examples, takes both branches."""
    x = x.copy()
    x[:, 0] = np.abs(x[:, 0]) * np.where(np.arange(len(x)) % 2 == 0, 1, -1)
    return x


# ----------------------------------------------------------------------------------------------
# The table


class Case(NamedTuple):
    name: str
    fn: Callable  # JAX, one example: fn(*args), or fn(params, *args) when ``params`` is given
    ref: Callable  # NumPy float64, same signature
    shapes: tuple[tuple[int, ...], ...]  # one example's argument shapes
    accumulates: bool = False  # sums many roundings: the table's accumulation bound applies
    dtypes: tuple[np.dtype, ...] = ALL_FLOATS
    domain: tuple[float, float] = (-2.0, 2.0)  # inputs are uniform on this interval
    params: Callable[[], Any] | None = None  # shared (unbatched) float64 pytree, e.g. weights
    prepare: Callable[[np.ndarray], np.ndarray] | None = None  # adjusts the first argument


M = (8, 8)  # one shape for most cases: eager's per-primitive executables are then shared

CASES = [
    # elementwise
    Case("selu", jax.nn.selu, np_selu, (M,)),
    Case("sin_exp", lambda x: jnp.sin(x) * jnp.exp(x), lambda x: np.sin(x) * np.exp(x), (M,)),
    Case(
        "where",
        lambda x, y: jnp.where(x > y, jnp.sin(x), y * jnp.cos(y)),
        lambda x, y: np.where(x > y, np.sin(x), y * np.cos(y)),
        (M, M),
    ),
    # reductions
    Case("sum", lambda x: jnp.sum(x, axis=-1), lambda x: np.sum(x, axis=-1), (M,), accumulates=True),
    Case("mean", jnp.mean, np.mean, (M,), accumulates=True),
    Case("max", lambda x: jnp.max(x, axis=0), lambda x: np.max(x, axis=0), (M,)),
    Case("logsumexp", jax.nn.logsumexp, np_logsumexp, (M,), accumulates=True, domain=(-4.0, 4.0), dtypes=NO_HALF),
    # matmul (always under default_matmul_precision("highest"): see the autouse fixture)
    Case("matmul", jnp.matmul, np.matmul, ((4, 16), (16, 5)), accumulates=True),
    Case(
        "einsum_bilinear",
        lambda a, m, b: jnp.einsum("i,ij,j->", a, m, b),
        lambda a, m, b: np.einsum("i,ij,j->", a, m, b),
        ((8,), (8, 8), (8,)),
        accumulates=True,
        dtypes=NO_HALF,
    ),
    # control flow
    Case("cond", jax_cond, np_cond, (M[:1],), prepare=alternate_first_sign, dtypes=NO_HALF),
    Case("scan_cumsum", jax_cumsum, lambda x: np.cumsum(x, axis=0), (M,), accumulates=True, dtypes=NO_HALF),
    Case("scan_recurrence", jax_recurrence, np_recurrence, (M,), accumulates=True, dtypes=NO_HALF),
    # autodiff
    Case(
        "grad_logistic",
        jax.grad(logistic_loss),
        np_logistic_grad,
        ((4,), (6, 4), (6,)),
        accumulates=True,
        dtypes=NO_HALF,
    ),
    # Haiku
    Case("haiku_mlp", mlp.apply, np_mlp, ((MLP_IN,),), accumulates=True, dtypes=NO_HALF, params=mlp_params),
]
CASES_BY_NAME = {c.name: c for c in CASES}
assert len(CASES_BY_NAME) == len(CASES), "case names must be unique"

# "eager" runs op by op (jax.disable_jit), so vmap is checked under jit, the way it is used; an
# un-jitted vmap would only repeat eager's op-by-op execution at twice the run time.
TRANSFORMS = ("eager", "jit", "jit_vmap", "pmap", "shard_map", "jit_named_sharding")


# ----------------------------------------------------------------------------------------------
# Inputs, references and the transforms


def n_devices() -> int:
    return jax.device_count()


@functools.cache
def mesh():
    return jax.make_mesh((n_devices(),), (AXIS,))


class Data(NamedTuple):
    params: Any  # pytree in dtype (``()`` when the case has none)
    args: tuple[np.ndarray, ...]  # batched, in dtype
    expected: np.ndarray  # float64 NumPy reference, batched


@functools.cache
def data(case_name: str, dtype: np.dtype) -> Data:
    case = CASES_BY_NAME[case_name]
    rng = np.random.default_rng(SEED)
    batch = PER_DEVICE * n_devices()
    args64 = [rng.uniform(*case.domain, size=(batch, *shape)) for shape in case.shapes]
    if case.prepare is not None:
        args64[0] = case.prepare(args64[0])
    args, args_ref = cast(tuple(args64), dtype)
    params, params_ref = cast(case.params() if case.params else (), dtype)
    pre = (params_ref,) if case.params else ()
    expected = np.stack([np.asarray(case.ref(*pre, *(a[i] for a in args_ref)), np.float64) for i in range(batch)])
    return Data(params, args, expected)


def with_params(case: Case) -> Callable:
    """The case's function as g(params, *args), ``params`` ignored when the case has none."""
    return case.fn if case.params else (lambda _params, *args: case.fn(*args))


def run(transform: str, case: Case, d: Data):
    g = with_params(case)
    k = len(d.args)
    in_axes = (None,) + (0,) * k
    batch = len(d.args[0])
    if transform == "eager":
        with jax.disable_jit():  # op by op, even inside lax.scan/cond and jnp's own jitted helpers
            return np.stack([g(d.params, *(a[i] for a in d.args)) for i in range(batch)])
    if transform == "jit":
        f = jax.jit(g)
        return np.stack([f(d.params, *(a[i] for a in d.args)) for i in range(batch)])
    if transform == "jit_vmap":
        return jax.jit(jax.vmap(g, in_axes))(d.params, *d.args)
    n = n_devices()
    if transform == "pmap":  # leading axis = device count, each device vmaps its own examples
        split = [a.reshape(n, batch // n, *a.shape[1:]) for a in d.args]
        out = jax.pmap(jax.vmap(g, in_axes), axis_name=AXIS, in_axes=in_axes)(d.params, *split)
        assert len(out.devices()) == n, out.devices()
        return out.reshape(batch, *out.shape[2:])
    sharded = NamedSharding(mesh(), P(AXIS))
    replicated = NamedSharding(mesh(), P())
    params = jax.device_put(d.params, replicated)
    args = [jax.device_put(a, sharded) for a in d.args]
    if transform == "shard_map":
        f = jax.jit(
            jax.shard_map(jax.vmap(g, in_axes), mesh=mesh(), in_specs=(P(),) + (P(AXIS),) * k, out_specs=P(AXIS))
        )
    elif transform == "jit_named_sharding":
        f = jax.jit(jax.vmap(g, in_axes), in_shardings=(replicated,) + (sharded,) * k, out_shardings=sharded)
    else:
        raise ValueError(transform)
    # make_mesh makes Explicit axes; from JAX 0.11 tracing with their shardings needs the mesh in
    # context (a scan inside jit otherwise fails: "Resource axis: d ... is not found in mesh: ()").
    with jax.set_mesh(mesh()):
        out = f(params, *args)
    assert out.sharding.is_equivalent_to(sharded, out.ndim), out.sharding
    return out


@functools.cache
def eager(case_name: str, dtype: np.dtype):
    case = CASES_BY_NAME[case_name]
    return np.asarray(run("eager", case, data(case_name, dtype)))


@pytest.fixture(autouse=True)
def highest_matmul_precision():
    if jax.process_count() > 1:
        pytest.skip("single-host only: inputs are NumPy arrays placed from one process")
    # Float64 references: on TPU (and GPU TF32) the default precision would be bf16 passes.
    with jax.default_matmul_precision("highest"):
        yield


# ----------------------------------------------------------------------------------------------
# Tests

CASE_DTYPES = [pytest.param(c, dt, id=f"{c.name}-{dt.name}") for c in CASES for dt in c.dtypes]


@pytest.mark.parametrize("transform", TRANSFORMS)
@pytest.mark.parametrize("case,dtype", CASE_DTYPES)
def test_matches_eager_and_numpy(case: Case, dtype: np.dtype, transform: str, backend: str):
    skip_unsupported(dtype, backend)
    d = data(case.name, dtype)
    out = eager(case.name, dtype) if transform == "eager" else run(transform, case, d)
    assert out.dtype == dtype, f"{transform} returned {out.dtype}, expected {dtype}"
    assert out.shape == d.expected.shape, (out.shape, d.expected.shape)
    tol = dict(backend=backend, accumulates=case.accumulates, dtype=dtype)
    labkit.assert_close(out, d.expected, err_msg=f"{case.name}/{transform} vs NumPy float64", **tol)
    if transform != "eager":
        labkit.assert_close(out, eager(case.name, dtype), err_msg=f"{case.name}/{transform} vs eager", **tol)


# -- collectives -------------------------------------------------------------------------------


class Collective(NamedTuple):
    name: str
    fn: Callable  # JAX, one device's block, inside an axis named AXIS
    ref: Callable  # NumPy float64, all devices' blocks stacked: (n, *block) -> (n, *block')
    accumulates: bool


COLLECTIVES = [
    Collective("psum", lambda x: lax.psum(x, AXIS), lambda xs: np.broadcast_to(xs.sum(0), xs.shape), True),
    Collective("pmean", lambda x: lax.pmean(x, AXIS), lambda xs: np.broadcast_to(xs.mean(0), xs.shape), True),
    Collective(
        "all_gather", lambda x: lax.all_gather(x, AXIS), lambda xs: np.broadcast_to(xs, (len(xs), *xs.shape)), False
    ),
]
BLOCK = (PER_DEVICE, 5)  # one device's block


def run_collective(transform: str, fn: Callable, blocks: np.ndarray):
    """Apply ``fn`` to each device's block with ``transform``; return (n, *output block)."""
    if transform == "pmap":
        return jax.pmap(fn, axis_name=AXIS)(blocks)
    # shard_map sees each device's block with its leading (device) axis of size 1
    n = len(blocks)
    x = jax.device_put(blocks, NamedSharding(mesh(), P(AXIS)))
    f = jax.jit(jax.shard_map(lambda b: fn(b[0])[None], mesh=mesh(), in_specs=P(AXIS), out_specs=P(AXIS)))
    out = f(x)
    assert len(out.sharding.device_set) == n
    return out


@pytest.mark.parametrize("dtype", [FLOAT32, BFLOAT16], ids=lambda d: d.name)
@pytest.mark.parametrize("coll", COLLECTIVES, ids=lambda c: c.name)
@pytest.mark.parametrize("transform", ["pmap", "shard_map"])
def test_collective_matches_numpy(transform: str, coll: Collective, dtype, backend: str, device_count: int):
    skip_unsupported(dtype, backend)
    rng = np.random.default_rng(SEED)
    blocks, blocks_ref = cast(rng.normal(size=(device_count, *BLOCK)), dtype)
    out = run_collective(transform, coll.fn, blocks)
    expected = coll.ref(blocks_ref)
    assert out.dtype == dtype and out.shape == expected.shape, (out.dtype, out.shape)
    labkit.assert_close(
        out,
        expected,
        backend=backend,
        accumulates=coll.accumulates,
        dtype=dtype,
        err_msg=f"{coll.name} via {transform}",
    )


@pytest.mark.parametrize("transform", ["pmap", "shard_map_varying", "shard_map_invariant"])
def test_data_parallel_grad_is_full_batch_grad(transform: str, backend: str, device_count: int):
    """Each device differentiates the loss on its own shard; combined over devices this must be
    the gradient of the mean loss over the whole batch (the data-parallel training step).

    pmap and shard_map differ here, and the test pins both: under pmap (and in shard_map once
    ``w`` is cast to device-varying) each device gets its *local* gradient, which ``pmean``
    averages. In shard_map a replicated (invariant, ``P()``) ``w``'s gradient is already
    summed over devices, because the transpose of its implicit broadcast is a ``psum``: a
    pmean there would be a no-op and the old pmap recipe would be ``n`` times too large.
    """
    rng = np.random.default_rng(SEED)
    examples_per_device, features = 4, 3
    n = device_count
    w, w_ref = cast(rng.normal(size=(features,)), FLOAT32)
    x, x_ref = cast(rng.normal(size=(n, examples_per_device, features)), FLOAT32)
    y, y_ref = cast(rng.uniform(size=(n, examples_per_device)), FLOAT32)

    def local_mean_grad(w, x, y):  # gradient of this device's mean loss
        return jax.grad(logistic_loss)(w, x, y) / x.shape[0]

    def step(w, x, y):  # one device's share of the data-parallel gradient
        if transform == "shard_map_varying":
            w = lax.pcast(w, AXIS, to="varying")
        if transform == "shard_map_invariant":  # the psum is implicit, only the 1/n is left
            return local_mean_grad(w, x, y) / n
        return lax.pmean(local_mean_grad(w, x, y), AXIS)

    if transform == "pmap":
        out = jax.pmap(step, axis_name=AXIS, in_axes=(None, 0, 0))(w, x, y)
    else:
        f = jax.jit(
            jax.shard_map(
                lambda w, x, y: step(w, x[0], y[0])[None],
                mesh=mesh(),
                in_specs=(P(), P(AXIS), P(AXIS)),
                out_specs=P(AXIS),
            )
        )
        out = f(*(jax.device_put(a, NamedSharding(mesh(), spec)) for a, spec in ((w, P()), (x, P(AXIS)), (y, P(AXIS)))))
    full = np_logistic_grad(w_ref, x_ref.reshape(-1, features), y_ref.reshape(-1))
    full /= n * examples_per_device
    expected = np.broadcast_to(full, (n, features))
    labkit.assert_close(
        out,
        expected,
        backend=backend,
        accumulates=True,
        dtype=FLOAT32,
        err_msg=f"data-parallel gradient via {transform}",
    )
