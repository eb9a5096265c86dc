"""Cross-hardware consistency of automatic differentiation: ``jax.jit(jax.grad(...))``,
per-example gradients with ``jax.vmap(jax.grad(...))`` against a loop of gradients, and Jacobians
and Hessians built with ``jax.jacfwd`` and with ``jax.jacrev`` agree with each other and with
gradients derived by hand in NumPy float64, on whatever backend ``--backend`` started.

The functions are the ones notebook 11 teaches with: a tanh MLP's mean squared error, a
log-sum-exp with its own backward pass (``jax.custom_vjp``) evaluated near 1000, where the naive
formula's gradient is nan, and a temporal-difference loss whose target is held fixed with
``jax.lax.stop_gradient``. Every reference is an analytic gradient written out in NumPy, never
JAX's own autodiff. Inputs are drawn once in float64 and cast to the dtype under test; the
references use the cast-back inputs, so only the computation's own rounding is measured. Every
bound comes from ``labkit.tolerance`` through ``labkit.assert_close``.

Each case compiles, so the table is small: bfloat16 is checked on the gradients, where its
8-bit mantissa meets the reductions of the backward pass; the per-example and Jacobian checks run
in float32 (and float64 with ``--x64``). Op-by-op (eager) gradients are checked against jit in
``test_transforms`` (its ``grad_logistic`` case).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import PyTreeDef

import labkit
from labkit.consistency.dtypes import BFLOAT16, FLOAT32, FLOAT64, cast, skip_unsupported

pytestmark = pytest.mark.consistency

SEED = 20240611
DTYPES = (FLOAT64, FLOAT32, BFLOAT16)
NO_BF16 = (FLOAT64, FLOAT32)

N, FEATURES, HIDDEN = 8, 3, 6  # examples, input features, hidden units of the MLP
GAMMA = 0.9  # discount of the temporal-difference target
LSE_OFFSET = 1000.0  # log-sum-exp inputs sit here: exp overflows float32 (and bfloat16) by far


# ----------------------------------------------------------------------------------------------
# JAX functions (written with explicit broadcasting: the plugin makes rank promotion an error)


def mlp_predict(p, x):
    hidden = jnp.tanh(x @ p["w1"] + p["b1"][None, :])
    return hidden @ p["w2"] + p["b2"]


def mlp_loss(p, x, y):
    return jnp.mean((mlp_predict(p, x) - y) ** 2)


def mlp_example_loss(p, x1, y1):
    """One example's squared error: x1 has shape (FEATURES,)."""
    return jnp.sum((mlp_predict(p, x1[None, :]) - y1) ** 2)


@jax.custom_vjp
def stable_logsumexp(x):
    m = jnp.max(x)
    return m + jnp.log(jnp.sum(jnp.exp(x - m)))


def _lse_fwd(x):
    m = jnp.max(x)
    e = jnp.exp(x - m)
    total = jnp.sum(e)
    return m + jnp.log(total), e / total


def _lse_bwd(softmax, g):
    return (g * softmax,)


stable_logsumexp.defvjp(_lse_fwd, _lse_bwd)


def scaled_logsumexp(x):
    """3 * lse(x): the cotangent reaching the custom backward pass is 3, not 1."""
    return 3.0 * stable_logsumexp(x)


def td_loss(w, s, r, s_next):
    target = jax.lax.stop_gradient(r + GAMMA * (s_next @ w))
    return jnp.mean((target - s @ w) ** 2)


def tanh_linear(v, a):
    return jnp.tanh(a @ v)


def plain_logsumexp(v):
    return jnp.log(jnp.sum(jnp.exp(v)))


# ----------------------------------------------------------------------------------------------
# NumPy float64 references, derived by hand


def np_mlp_grad(p, x, y):
    hidden = np.tanh(x @ p["w1"] + p["b1"])
    d_out = 2.0 * (hidden @ p["w2"] + p["b2"] - y) / len(x)
    d_pre = np.outer(d_out, p["w2"]) * (1.0 - hidden**2)
    return {"w1": x.T @ d_pre, "b1": d_pre.sum(0), "w2": hidden.T @ d_out, "b2": d_out.sum()}


def np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_scaled_logsumexp_grad(x):
    return 3.0 * np_softmax(x)


def np_td_grad(w, s, r, s_next):
    """d/dw with the target r + gamma * s_next @ w held fixed: -2/n s^T (target - s @ w)."""
    return -2.0 / len(s) * s.T @ (r + GAMMA * (s_next @ w) - s @ w)


def np_tanh_linear_jacobian(v, a):
    return (1.0 - np.tanh(a @ v) ** 2)[:, None] * a


def np_logsumexp_hessian(v):
    p = np_softmax(v)
    return np.diag(p) - np.outer(p, p)


# ----------------------------------------------------------------------------------------------
# Inputs


def mlp_inputs(rng):
    params = {
        "w1": rng.normal(size=(FEATURES, HIDDEN)) / np.sqrt(FEATURES),
        "b1": 0.1 * rng.normal(size=HIDDEN),
        "w2": rng.normal(size=HIDDEN) / np.sqrt(HIDDEN),
        "b2": np.float64(0.1),
    }
    return params, rng.uniform(-1.0, 1.0, size=(N, FEATURES)), rng.normal(size=N)


def lse_inputs(rng):
    return (LSE_OFFSET + rng.uniform(-4.0, 4.0, size=10),)


def td_inputs(rng):
    return rng.normal(size=4), rng.normal(size=(N, 4)), rng.normal(size=N), rng.normal(size=(N, 4))


class GradCase(NamedTuple):
    name: str
    fn: Callable  # JAX, scalar output; differentiated with respect to its first argument
    ref: Callable  # NumPy float64 gradient, same arguments
    inputs: Callable  # rng -> float64 arguments


GRAD_CASES = [
    GradCase("mlp_loss", mlp_loss, np_mlp_grad, mlp_inputs),
    GradCase("logsumexp_custom_vjp", scaled_logsumexp, np_scaled_logsumexp_grad, lse_inputs),
    GradCase("td_loss_stop_gradient", td_loss, np_td_grad, td_inputs),
]
GRAD_CASES_BY_NAME = {c.name: c for c in GRAD_CASES}


@functools.cache
def grad_data(name: str, dtype: np.dtype):
    """(arguments in dtype, the float64 reference gradient)."""
    case = GRAD_CASES_BY_NAME[name]
    args, args64 = cast(case.inputs(np.random.default_rng(SEED)), dtype)
    return args, case.ref(*args64)


def assert_tree_close(actual, expected, dtype, backend, what):
    structure: PyTreeDef = jax.tree.structure(actual)
    assert structure == jax.tree.structure(expected), (what, structure)
    for path, a in jax.tree_util.tree_leaves_with_path(actual):
        e = functools.reduce(lambda t, k: t[k.key], path, expected) if path else expected
        assert a.dtype == dtype and a.shape == np.shape(e), (what, path, a.dtype, a.shape)
        labkit.assert_close(
            a, e, backend=backend, accumulates=True, dtype=dtype, err_msg=f"{what} {jax.tree_util.keystr(path)}"
        )


@pytest.fixture(autouse=True)
def highest_matmul_precision():
    # Float64 references: on TPU (and GPU TF32) the default precision would be bf16 passes.
    with jax.default_matmul_precision("highest"):
        yield


# ----------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("case", GRAD_CASES, ids=lambda c: c.name)
def test_jit_grad_matches_numpy(case: GradCase, dtype: np.dtype, backend: str):
    skip_unsupported(dtype, backend)
    args, expected = grad_data(case.name, dtype)
    grads = jax.jit(jax.grad(case.fn))(*args)
    assert_tree_close(grads, expected, dtype, backend, f"jit(grad({case.name})) vs NumPy float64")


def test_naive_logsumexp_gradient_is_nan_at_the_custom_vjp_inputs():
    """Why the custom backward pass: at these inputs exp overflows float32, on every backend, and
    the naive formula's gradient is nan (inf / inf), where the custom one is finite (above)."""
    (x,), _ = cast(lse_inputs(np.random.default_rng(SEED)), FLOAT32)
    assert np.isnan(np.asarray(jax.jit(jax.grad(plain_logsumexp))(x))).all()


@pytest.mark.parametrize("dtype", NO_BF16, ids=lambda d: d.name)
def test_vmap_grad_matches_a_loop_of_grads(dtype: np.dtype, backend: str):
    skip_unsupported(dtype, backend)
    (params, x, y), (params64, x64, y64) = cast(mlp_inputs(np.random.default_rng(SEED)), dtype)
    per_example = jax.jit(jax.vmap(jax.grad(mlp_example_loss), in_axes=(None, 0, 0)))(params, x, y)
    one = jax.jit(jax.grad(mlp_example_loss))
    looped = [one(params, x[i], y[i]) for i in range(N)]
    stacked = {k: np.stack([np.asarray(g[k], np.float64) for g in looped]) for k in params}
    # np_mlp_grad averages over the examples it is given: one example, times 1, is its own gradient.
    reference = [np_mlp_grad(params64, x64[i : i + 1], y64[i : i + 1]) for i in range(N)]
    expected = {k: np.stack([g[k] for g in reference]) for k in params}
    assert_tree_close(per_example, expected, dtype, backend, "jit(vmap(grad)) vs NumPy float64")
    assert_tree_close(per_example, stacked, dtype, backend, "jit(vmap(grad)) vs a loop of jit(grad)")


class JacCase(NamedTuple):
    name: str
    fn: Callable  # JAX; the Jacobian is taken with respect to the first argument
    jacobians: tuple[Callable, Callable]  # two ways to build it, fn -> Jacobian function
    ref: Callable  # NumPy float64 Jacobian (or Hessian)
    inputs: Callable  # rng -> float64 arguments


JAC_CASES = [
    # a tall Jacobian (3 inputs, 7 outputs), forward mode against reverse mode
    JacCase(
        "tanh_linear",
        tanh_linear,
        (jax.jacfwd, jax.jacrev),
        np_tanh_linear_jacobian,
        lambda rng: (rng.normal(size=3), rng.normal(size=(7, 3)) / 2),
    ),
    # the Hessian, forward-over-reverse (jax.hessian) against reverse-over-reverse
    JacCase(
        "logsumexp_hessian",
        plain_logsumexp,
        (lambda f: jax.jacfwd(jax.jacrev(f)), lambda f: jax.jacrev(jax.jacrev(f))),
        np_logsumexp_hessian,
        lambda rng: (rng.uniform(-2.0, 2.0, size=5),),
    ),
]


@pytest.mark.parametrize("dtype", NO_BF16, ids=lambda d: d.name)
@pytest.mark.parametrize("case", JAC_CASES, ids=lambda c: c.name)
def test_jacfwd_matches_jacrev_and_numpy(case: JacCase, dtype: np.dtype, backend: str):
    skip_unsupported(dtype, backend)
    args, args64 = cast(case.inputs(np.random.default_rng(SEED)), dtype)
    expected = case.ref(*args64)
    # One program computes both (one compilation); each is checked against NumPy on its own.
    make_first, make_second = case.jacobians
    both = jax.jit(lambda *a: (make_first(case.fn)(*a), make_second(case.fn)(*a)))(*args)
    first, second = (np.asarray(j) for j in both)
    for name, jac in (("first", first), ("second", second)):
        assert jac.dtype == dtype and jac.shape == expected.shape, (name, jac.dtype, jac.shape)
        labkit.assert_close(
            jac,
            expected,
            backend=backend,
            accumulates=True,
            dtype=dtype,
            err_msg=f"{case.name}: {name} way vs NumPy float64",
        )
    labkit.assert_close(
        first,
        second.astype(np.float64),
        backend=backend,
        accumulates=True,
        dtype=dtype,
        err_msg=f"{case.name}: the two ways disagree",
    )
