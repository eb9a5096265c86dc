"""Pytrees across hardware: tree-structured parameters go through jit, grad and vmap and come
back with their structure, and the numbers agree with eager execution and with float64 NumPy
references written leaf by leaf (notebook 12 teaches the same operations).

The parameter tree is the one the notebook uses, small: a dict holding a list of layers, each a
dict of ``w`` and ``b``, the output layer's ``b`` being ``None`` (an empty subtree), and a scalar
``scale``. Inputs are drawn once in float64, cast to the dtype under test, and the references are
computed from the cast-back values in float64, so only the computation's own rounding is measured.
Every bound comes from ``labkit.tolerance`` through ``labkit.assert_close``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.tree_util import PyTreeDef

import labkit
from labkit.consistency.dtypes import BFLOAT16, FLOAT32, FLOAT64, cast, skip_unsupported

pytestmark = pytest.mark.consistency

SEED = 20240612
DTYPES = [FLOAT64, FLOAT32, BFLOAT16]
# bfloat16 is checked where the arithmetic is elementwise or one reduction (the update, the clip);
# the gradients would repeat those checks in bfloat16 at three times the compile time.
NO_BF16 = [FLOAT64, FLOAT32]

N_IN, HIDDEN, N_OUT, BATCH = 4, 8, 3, 8
LR = 0.25  # exact in every dtype, so the update's only roundings are the product and the difference


@pytest.fixture(autouse=True)
def highest_matmul_precision():
    # Float64 references: TPUs and recent GPUs would otherwise multiply in bf16 passes or TF32.
    with jax.default_matmul_precision("highest"):
        yield


# ----------------------------------------------------------------------------------------------
# Data: float64 draws, cast to the dtype under test


def draw(seed_offset: int = 0):
    rng = np.random.default_rng(SEED + seed_offset)
    params = {
        "layers": [
            {"w": rng.normal(size=(N_IN, HIDDEN)) / 2.0, "b": 0.1 * rng.normal(size=HIDDEN)},
            {"w": rng.normal(size=(HIDDEN, N_OUT)) / 3.0, "b": None},
        ],
        "scale": np.array(1.5),
    }
    x = rng.normal(size=(BATCH, N_IN))
    y = rng.normal(size=(BATCH, N_OUT))
    return params, x, y


def assert_same_structure(actual, expected, what: str) -> None:
    got: PyTreeDef = jax.tree.structure(actual)
    want: PyTreeDef = jax.tree.structure(expected)
    assert got == want, f"{what}: {got} != {want}"


def assert_tree_close(actual, expected, *, backend, dtype, accumulates, what: str) -> None:
    """Leaf by leaf, after the structures are checked equal."""
    assert_same_structure(actual, expected, what)
    for (path, a), e in zip(jax.tree.leaves_with_path(actual), jax.tree.leaves(expected), strict=True):
        a = np.asarray(a)
        assert a.dtype == dtype, f"{what}{jax.tree_util.keystr(path)}: dtype {a.dtype}, expected {dtype}"
        labkit.assert_close(
            a, e, backend=backend, accumulates=accumulates, dtype=dtype, err_msg=f"{what}{jax.tree_util.keystr(path)}"
        )


# ----------------------------------------------------------------------------------------------
# The model, in JAX and in NumPy (the gradient derived by hand)


def predict(params, x):
    *hidden, last = params["layers"]
    for layer in hidden:
        x = jnp.tanh(x @ layer["w"] + layer["b"][None, :])  # explicit: rank promotion raises here
    return params["scale"] * (x @ last["w"])


def loss(params, x, y):
    return jnp.mean((predict(params, x) - y) ** 2)


def np_loss_and_grad(params, x, y):
    """The loss above and its gradient with respect to ``params``, by hand, in float64."""
    (l1, l2), scale = params["layers"], params["scale"]
    h = np.tanh(x @ l1["w"] + l1["b"])
    u = h @ l2["w"]
    r = scale * u - y
    d_pred = 2.0 * r / r.size
    d_h = (scale * d_pred) @ l2["w"].T
    d_z = d_h * (1.0 - h**2)
    grads = {
        "layers": [{"w": x.T @ d_z, "b": d_z.sum(axis=0)}, {"w": h.T @ (scale * d_pred), "b": None}],
        "scale": np.sum(d_pred * u),
    }
    return np.mean(r**2), grads


# ----------------------------------------------------------------------------------------------
# A registered class and the plain dict it mirrors

ACTIVATIONS = {"tanh": jnp.tanh, "relu": jax.nn.relu}
NP_ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"tanh": np.tanh, "relu": lambda z: np.maximum(z, 0.0)}


@jax.tree_util.register_pytree_node_class
class Linear:
    """activation(x @ w + b): ``w`` and ``b`` are children, the activation's name aux data."""

    def __init__(self, w, b, activation):
        self.w, self.b, self.activation = w, b, activation

    def __call__(self, x):
        return ACTIVATIONS[self.activation](x @ self.w + self.b)

    def tree_flatten(self):
        return (self.w, self.b), self.activation

    @classmethod
    def tree_unflatten(cls, activation: str, children: tuple[Any, Any]) -> Linear:
        return cls(*children, activation)


def dict_layer(layer, x, activation):
    return ACTIVATIONS[activation](x @ layer["w"] + layer["b"])


# ----------------------------------------------------------------------------------------------
# Tests


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_sgd_update_by_tree_map_under_jit_matches_eager_and_numpy(dtype, backend):
    skip_unsupported(dtype, backend)
    params64, _, _ = draw()
    grads64 = jax.tree.map(lambda a: np.cos(3.0 * a), params64)  # any tree of the same structure
    params, params_ref = cast(params64, dtype)
    grads, grads_ref = cast(grads64, dtype)
    # JAX arrays, so that "eager" is JAX op by op and not NumPy's own arithmetic on the leaves
    # (whose promotion of bfloat16 with a Python float depends on the ml_dtypes release).
    params, grads = jax.device_put((params, grads))

    def sgd_step(p, g):
        return jax.tree.map(lambda a, b: a - LR * b, p, g)

    expected = jax.tree.map(lambda a, b: a - LR * b, params_ref, grads_ref)
    with jax.disable_jit():
        eager = sgd_step(params, grads)
    jitted = jax.jit(sgd_step)(params, grads)
    tol = dict(backend=backend, dtype=dtype, accumulates=False)
    assert_tree_close(eager, expected, what="eager SGD step", **tol)
    assert_tree_close(jitted, expected, what="jitted SGD step", **tol)
    assert_tree_close(jitted, eager, what="jitted vs eager SGD step", **tol)
    assert jitted["layers"][-1]["b"] is None


@jax.jit
def batch_and_per_example_grads(params, x, y):
    value, grads = jax.value_and_grad(loss)(params, x, y)
    # vmap with a pytree in_axes: the parameters shared (None), the data split into examples.
    per_example = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(params, x[:, None], y[:, None])
    return value, grads, per_example


@pytest.mark.parametrize("dtype", NO_BF16, ids=lambda d: d.name)
def test_grad_and_per_example_grad_of_a_params_dict_match_numpy(dtype, backend):
    skip_unsupported(dtype, backend)
    params64, x64, y64 = draw()
    (params, x, y), (params_ref, x_ref, y_ref) = cast((params64, x64, y64), dtype)
    tol = dict(backend=backend, dtype=dtype, accumulates=True)

    value, grads, per_example = batch_and_per_example_grads(params, x, y)
    expected_value, expected = np_loss_and_grad(params_ref, x_ref, y_ref)
    labkit.assert_close(value, expected_value, err_msg="loss", **tol)
    assert_tree_close(grads, expected, what="grad", **tol)  # a dict like params, None included
    rows = [np_loss_and_grad(params_ref, x_ref[i : i + 1], y_ref[i : i + 1])[1] for i in range(BATCH)]
    expected_rows = jax.tree.map(lambda *leaves: np.stack(leaves), *rows)
    assert_tree_close(per_example, expected_rows, what="per-example grad", **tol)


@jax.jit
def class_outputs_and_grad(layer, x):
    """The layer on each example (vmap), and the gradient of their sum with respect to the layer."""

    def total(lay):
        out = jax.vmap(lay)(x)
        return jnp.sum(out), out

    return jax.grad(total, has_aux=True)(layer)[::-1]


@jax.jit
def dict_outputs_and_grad(params, x):
    def total(p):
        out = jax.vmap(lambda v: dict_layer(p, v, "tanh"))(x)
        return jnp.sum(out), out

    return jax.grad(total, has_aux=True)(params)[::-1]


@pytest.mark.parametrize("dtype", NO_BF16, ids=lambda d: d.name)
def test_registered_class_through_jit_vmap_grad_matches_a_plain_dict(dtype, backend):
    skip_unsupported(dtype, backend)
    params64, x64, _ = draw(1)
    (w, b, x), (w_ref, b_ref, x_ref) = cast((params64["layers"][0]["w"], params64["layers"][0]["b"], x64), dtype)
    tol = dict(backend=backend, dtype=dtype, accumulates=True)
    z = x_ref @ w_ref + b_ref

    # The aux data picks the activation: a new activation is a new structure, traced apart.
    out_relu, _ = class_outputs_and_grad(Linear(w, b, "relu"), x)
    labkit.assert_close(out_relu, NP_ACTIVATIONS["relu"](z), err_msg="relu layer vs NumPy", **tol)

    out, g = class_outputs_and_grad(Linear(w, b, "tanh"), x)
    out_dict, g_dict = dict_outputs_and_grad({"w": w, "b": b}, x)
    assert isinstance(g, Linear) and g.activation == "tanh", type(g)
    labkit.assert_close(out, NP_ACTIVATIONS["tanh"](z), err_msg="tanh layer vs NumPy", **tol)
    labkit.assert_close(out, out_dict, err_msg="tanh layer, class vs dict", **tol)
    d_z = 1.0 - np.tanh(z) ** 2
    expected = {"w": x_ref.T @ d_z, "b": d_z.sum(axis=0)}
    assert_tree_close({"w": g.w, "b": g.b}, expected, what="grad of the class", **tol)
    assert_tree_close({"w": g.w, "b": g.b}, g_dict, what="grad, class vs dict", **tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_global_norm_clip_under_jit_matches_numpy(dtype, backend):
    skip_unsupported(dtype, backend)
    params64, _, _ = draw(2)
    tree, tree_ref = cast(params64, dtype)

    @jax.jit
    def clip(t, max_norm):
        norm = jnp.sqrt(jax.tree.reduce(lambda acc, s: acc + s, jax.tree.map(lambda a: jnp.sum(a * a), t)))
        factor = jnp.minimum(1, max_norm / norm).astype(norm.dtype)
        return norm, jax.tree.map(lambda a: a * factor, t)

    flat = np.concatenate([a.ravel() for a in jax.tree.leaves(tree_ref)])
    norm_ref = np.sqrt(np.sum(flat**2))  # the global norm as the 2-norm of one long vector
    tol = dict(backend=backend, dtype=dtype, accumulates=True)
    for wanted in (0.5 * norm_ref, 2.0 * norm_ref):  # clipped, then left alone; one compilation
        max_norm = np.asarray(wanted, dtype)
        norm, clipped = clip(tree, max_norm)
        factor = min(1.0, float(max_norm.astype(np.float64)) / norm_ref)
        labkit.assert_close(norm, norm_ref, err_msg="global norm", **tol)
        expected = jax.tree.map(lambda a, f=factor: a * f, tree_ref)
        assert_tree_close(clipped, expected, what=f"clip by the factor {factor:.3f}", **tol)
