"""The room itself, before any transform: JAX runs on the backend the run asked for, with the
registry's device count; a matmul at "highest" precision agrees with float64 NumPy; and
``jax.device_put`` to each device gives back the values it was given. Notebook 00 shows a learner
the same things, and test_transforms.py builds on them.

Small and quick: a few tiny arrays, one compilation per case.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import labkit
from labkit.consistency.dtypes import BFLOAT16, FLOAT32, FLOAT64, skip_unsupported

pytestmark = pytest.mark.consistency

SEED = 20240601


def test_jax_runs_on_the_backend_asked_for(backend: str):
    platform = labkit.get_backend(backend).platform
    assert jax.default_backend() == platform, (
        f"--backend {backend} asked for platform {platform!r}, but JAX runs on {jax.default_backend()!r}"
    )
    platforms = {d.platform for d in jax.devices()}
    assert platforms == {platform}, f"the default devices are on {platforms}, not only {platform!r}"


def test_device_count_is_the_registry_s(backend: str, device_count: int):
    simulated = labkit.get_backend(backend).simulated_devices
    assert device_count == len(jax.devices()) >= 1
    assert jax.local_device_count() == len(jax.local_devices()) >= 1
    if simulated:
        assert device_count == simulated, (
            f"backend {backend!r} simulates {simulated} devices, but JAX sees {device_count}"
        )


@pytest.mark.parametrize("transform", ["eager", "jit"])
@pytest.mark.parametrize("dtype", [FLOAT32, FLOAT64], ids=lambda d: d.name)
def test_highest_precision_matmul_matches_numpy(dtype: np.dtype, transform: str, backend: str):
    """At "highest" precision a float32 product is float32 arithmetic on every backend; at the
    default it would be TensorFloat-32 on recent NVIDIA GPUs and one bfloat16 pass on a TPU."""
    skip_unsupported(dtype, backend)
    rng = np.random.default_rng(SEED)
    a = rng.standard_normal((16, 64)).astype(dtype)
    b = rng.standard_normal((64, 8)).astype(dtype)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    matmul = jax.jit(jnp.matmul) if transform == "jit" else jnp.matmul
    with jax.default_matmul_precision("highest"):
        out = matmul(a, b)
    assert out.dtype == dtype, f"matmul of {dtype} returned {out.dtype}"
    labkit.assert_close(
        out,
        expected,
        backend=backend,
        accumulates=True,
        dtype=dtype,
        err_msg=f"{transform} matmul at highest precision vs NumPy float64",
    )


@pytest.mark.parametrize("dtype", [FLOAT32, BFLOAT16, FLOAT64], ids=lambda d: d.name)
def test_device_put_to_each_device_round_trips(dtype: np.dtype, backend: str):
    """Host -> each device, device -> the next device, and back to the host: the values stay."""
    skip_unsupported(dtype, backend)
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal((3, 5))
    x[0, :3] = (0.0, -1.5, 1024.0)  # exact in every dtype here
    x = x.astype(dtype)
    devices = jax.devices()
    previous = jax.device_put(x, devices[-1])
    for device in devices:
        from_host = jax.device_put(x, device)
        from_device = jax.device_put(previous, device)  # a device-to-device copy (the same device once)
        for name, y in (("host", from_host), ("another device", from_device)):
            assert y.devices() == {device}, f"device_put to {device} from {name} left it on {y.devices()}"
            assert y.dtype == dtype and y.shape == x.shape, (y.dtype, y.shape)
            labkit.assert_close(
                np.asarray(y), x, backend=backend, dtype=dtype, err_msg=f"device_put to {device} from {name}, read back"
            )
        previous = from_host
