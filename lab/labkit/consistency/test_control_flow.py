"""Cross-hardware consistency of JAX's structured control flow (notebook 13): ``lax.scan``,
``lax.fori_loop``, ``lax.while_loop``, ``lax.cond`` and ``jnp.where`` agree with the same loop or
branch written in Python (run eagerly, and unrolled by ``jax.jit``) and with a float64 NumPy
reference, on whatever backend ``--backend`` started.

A compiler lowers a Python loop unrolled under jit (one long straight-line program, fused as the
compiler likes) quite differently from a ``scan`` or ``while`` loop (one loop body, run again and
again), and a ``cond`` under ``vmap`` becomes a ``select`` of both branches. These checks pin that
every lowering computes the same numbers, gradients included.

Inputs are cast as :func:`labkit.consistency.dtypes.cast` says, and every bound comes from
``labkit.tolerance`` through ``labkit.assert_close``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

import labkit
from labkit.consistency.dtypes import BFLOAT16, FLOAT32, FLOAT64, cast, skip_unsupported

pytestmark = pytest.mark.consistency

SEED = 20240613
DTYPES = [pytest.param(dt, id=dt.name) for dt in (FLOAT64, FLOAT32, BFLOAT16)]

STEPS, WIDTH = 6, 4  # a sequence of STEPS vectors of WIDTH elements
DECAY = 0.75  # of the leaky running sum
COS_STEPS = 4  # iterations of x <- cos(x): few enough that one step more or less is seen, in bfloat16 too


@functools.cache
def inputs(dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    return cast(rng.uniform(-2.0, 2.0, size=(STEPS, WIDTH)), dtype)


# ----------------------------------------------------------------------------------------------
# scan: a tuple carry (leaky running sum, its running maximum) and both stacked as outputs


def np_leaky(xs):
    s, m, sums, maxes = np.zeros(xs.shape[1:]), np.full(xs.shape[1:], -np.inf), [], []
    for x in xs:
        s = DECAY * s + x
        m = np.maximum(m, s)
        sums.append(s)
        maxes.append(m)
    return np.stack(sums), np.stack(maxes)


def leaky_step(carry, x):
    s, m = carry
    s = DECAY * s + x
    m = jnp.maximum(m, s)
    return (s, m), (s, m)


def leaky_scan(xs):
    init = (jnp.zeros_like(xs[0]), jnp.full_like(xs[0], -jnp.inf))
    _, (sums, maxes) = lax.scan(leaky_step, init, xs)
    return sums, maxes


def leaky_python(xs):
    carry, sums, maxes = (jnp.zeros_like(xs[0]), jnp.full_like(xs[0], -jnp.inf)), [], []
    for t in range(xs.shape[0]):
        carry, (s, m) = leaky_step(carry, xs[t])
        sums.append(s)
        maxes.append(m)
    return jnp.stack(sums), jnp.stack(maxes)


@jax.jit
def leaky_jitted(xs):
    """Both lowerings in one program (one compilation keeps the module fast): the scan's loop
    body, and the Python loop unrolled into STEPS copies of it."""
    return {"scan_jit": leaky_scan(xs), "python_unrolled_jit": leaky_python(xs)}


@pytest.mark.parametrize("dtype", DTYPES)
def test_scan_matches_the_python_loop_and_numpy(dtype, backend):
    skip_unsupported(dtype, backend)
    xs, xs_ref = inputs(dtype)
    expected = np_leaky(xs_ref)
    tol = dict(backend=backend, accumulates=True, dtype=dtype)
    outs = {"python_eager": leaky_python(xs), **leaky_jitted(xs)}  # eager: op by op
    for name, (sums, maxes) in outs.items():
        assert sums.dtype == maxes.dtype == dtype, (name, sums.dtype, maxes.dtype)
        assert sums.shape == maxes.shape == xs.shape, (name, sums.shape, maxes.shape)
        labkit.assert_close(sums, expected[0], err_msg=f"{name}: sums vs NumPy float64", **tol)
        labkit.assert_close(maxes, expected[1], err_msg=f"{name}: maxima vs NumPy float64", **tol)
        labkit.assert_close(sums, outs["python_eager"][0], err_msg=f"{name}: sums vs the eager loop", **tol)


# ----------------------------------------------------------------------------------------------
# fori_loop (static and traced bounds), while_loop and a Python loop: x <- cos(x), COS_STEPS times


def np_cos_iterate(x, n):
    for _ in range(n):
        x = np.cos(x)
    return x


def cos_python(x, n):
    for _ in range(n):
        x = jnp.cos(x)
    return x


def cos_fori(x, n):
    return lax.fori_loop(0, n, lambda i, v: jnp.cos(v), x)


def cos_while(x, n):
    _, x = lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, jnp.cos(c[1])), (0, x))
    return x


@functools.partial(jax.jit, static_argnums=1)
def loops_jitted(x, steps, n):
    """``steps`` is static (a Python int), ``n`` traced: four lowerings in one program."""
    return {
        "python_unrolled_jit": cos_python(x, steps),
        "fori_static_jit": cos_fori(x, steps),  # Python bounds: lowered as a scan
        "fori_traced_jit": cos_fori(x, n),  # a traced bound: lowered as a while loop
        "while_jit": cos_while(x, n),
    }


@pytest.mark.parametrize("dtype", DTYPES)
def test_fori_loop_while_loop_and_python_loop_agree(dtype, backend):
    skip_unsupported(dtype, backend)
    x, x_ref = inputs(dtype)
    expected = np_cos_iterate(x_ref, COS_STEPS)
    tol = dict(backend=backend, accumulates=True, dtype=dtype)
    eager = cos_python(x, COS_STEPS)
    outs = {"python_eager": eager, **loops_jitted(x, COS_STEPS, COS_STEPS)}
    for name, out in outs.items():
        assert out.dtype == dtype and out.shape == x.shape, (name, out.dtype, out.shape)
        labkit.assert_close(out, expected, err_msg=f"{name} vs NumPy float64", **tol)
        labkit.assert_close(out, eager, err_msg=f"{name} vs the eager Python loop", **tol)


def test_fori_loop_lowers_to_scan_with_static_bounds_and_to_while_with_traced_ones():
    """The lowering the loop test relies on (structural, the same on every backend)."""
    x = jnp.zeros(3)
    static = jax.make_jaxpr(lambda v: cos_fori(v, COS_STEPS))(x)
    traced = jax.make_jaxpr(cos_fori)(x, COS_STEPS)
    assert [e.primitive.name for e in static.eqns] == ["scan"], static
    assert static.eqns[0].params["length"] == COS_STEPS
    assert [e.primitive.name for e in traced.eqns] == ["while"], traced


# ----------------------------------------------------------------------------------------------
# cond vs where, under jit and under vmap (where vmap turns a batched cond into a select)


def np_piecewise(x):
    return np.where(x > 0, np.sin(3.0 * x) / (1.0 + x), x * np.exp(x))


def piecewise_cond(x):  # one scalar
    return lax.cond(x > 0, lambda v: jnp.sin(3 * v) / (1 + v), lambda v: v * jnp.exp(v), x)


def piecewise_where(x):
    return jnp.where(x > 0, jnp.sin(3 * x) / (1 + x), x * jnp.exp(x))


COND_SCALARS = 4  # elements also run one at a time through an unbatched cond


@jax.jit
def branches_jitted(x):
    return {
        "cond_jit": jnp.stack([piecewise_cond(x[i]) for i in range(COND_SCALARS)]),  # a real branch
        "cond_jit_vmap": jax.vmap(piecewise_cond)(x),  # a select of both branches
        "where_jit": piecewise_where(x),
    }


@pytest.mark.parametrize("dtype", DTYPES)
def test_cond_and_where_agree_under_jit_and_vmap(dtype, backend):
    skip_unsupported(dtype, backend)
    x, x_ref = inputs(dtype)
    x, x_ref = x.reshape(-1), x_ref.reshape(-1)
    assert np.any(x[:COND_SCALARS] > 0) and np.any(x[:COND_SCALARS] <= 0), "cond must take both branches"
    expected = np_piecewise(x_ref)
    outs = branches_jitted(x)
    for name, out in outs.items():
        assert out.dtype == dtype, (name, out.dtype)
        n = len(out)
        labkit.assert_close(out, expected[:n], backend=backend, dtype=dtype, err_msg=f"{name} vs NumPy float64")
        labkit.assert_close(out, outs["where_jit"][:n], backend=backend, dtype=dtype, err_msg=f"{name} vs where")


def test_vmap_of_cond_becomes_a_select_of_both_branches():
    jaxpr = jax.make_jaxpr(jax.vmap(piecewise_cond))(jnp.zeros(3))
    names = [e.primitive.name for e in jaxpr.eqns]
    assert "cond" not in names and "select_n" in names, names
    assert {"sin", "exp"} <= set(names), names  # both branches are computed for every element


# ----------------------------------------------------------------------------------------------
# reverse-mode gradients: through the scan and through the unrolled loop


def np_rnn_grad(xs, a):
    """d/d(xs, a) of sum_t h_t, h_t = tanh(a * h_{t-1} + x_t), h_0 = 0: backpropagation by hand."""
    hs = [np.zeros(xs.shape[1:])]
    for x in xs:
        hs.append(np.tanh(a * hs[-1] + x))
    g_h, g_xs, g_a = np.zeros(xs.shape[1:]), np.zeros_like(xs), 0.0
    for t in reversed(range(len(xs))):
        g_h = g_h + 1.0  # d loss / d h_t from the sum
        g_z = g_h * (1.0 - hs[t + 1] ** 2)
        g_xs[t] = g_z
        g_a += float(np.sum(g_z * hs[t]))
        g_h = g_z * a
    return g_xs, g_a


def rnn_step(a, h, x):
    h = jnp.tanh(a * h + x)
    return h, h


def rnn_loss_scan(xs, a):
    _, hs = lax.scan(functools.partial(rnn_step, a), jnp.zeros_like(xs[0]), xs)
    return jnp.sum(hs)


def rnn_loss_unrolled(xs, a):
    h, total = jnp.zeros_like(xs[0]), jnp.zeros((), xs.dtype)
    for t in range(xs.shape[0]):
        h, _ = rnn_step(a, h, xs[t])
        total = total + jnp.sum(h)
    return total


@jax.jit
def rnn_grads(xs, a):
    return {
        "scan": jax.grad(rnn_loss_scan, argnums=(0, 1))(xs, a),
        "unrolled": jax.grad(rnn_loss_unrolled, argnums=(0, 1))(xs, a),
    }


@pytest.mark.parametrize("dtype", DTYPES)
def test_grad_through_scan_matches_grad_through_the_unrolled_loop(dtype, backend):
    skip_unsupported(dtype, backend)
    # Scaled in float64 and cast again (exact in every dtype: a power of two): NumPy's own
    # arithmetic on a bfloat16 array may promote it, depending on the ml_dtypes release.
    xs, xs_ref = cast(0.5 * inputs(dtype)[1], dtype)
    a, a_ref = cast(np.float64(0.8), dtype)
    expected = np_rnn_grad(xs_ref, float(a_ref))
    tol = dict(backend=backend, accumulates=True, dtype=dtype)
    grads = rnn_grads(xs, a)
    for name, (g_xs, g_a) in grads.items():
        assert g_xs.dtype == g_a.dtype == dtype, (name, g_xs.dtype, g_a.dtype)
        labkit.assert_close(g_xs, expected[0], err_msg=f"grad through {name}: d/dxs vs NumPy float64", **tol)
        labkit.assert_close(g_a, expected[1], err_msg=f"grad through {name}: d/da vs NumPy float64", **tol)
    labkit.assert_close(grads["scan"][0], grads["unrolled"][0], err_msg="d/dxs: scan vs unrolled", **tol)
    labkit.assert_close(grads["scan"][1], grads["unrolled"][1], err_msg="d/da: scan vs unrolled", **tol)
