"""The one registry of backends.

Everything that differs between CPU, NVIDIA GPU and Cloud TPU runs is described here once:
the JAX platform name, the pip extra that installs its plugin, what a container needs to see
the device, and the names of its image and compose service. Tasks, the runner, tests and the
checks that keep ``docker/`` and ``compose.yaml`` in step all read this table.
"""

from __future__ import annotations

import glob
import importlib.util
from dataclasses import dataclass, field

from .errors import UsageError


@dataclass(frozen=True)
class Backend:
    name: str
    platform: str  # what jax.default_backend() reports
    jax_extra: str  # the requirement that brings the platform's plugin
    pip_extra: str  # this project's optional dependency group (pyproject.toml)
    description: str
    # Device nodes whose presence shows the hardware is on this machine; empty means always there.
    device_globs: tuple[str, ...] = ()
    container_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    simulated_devices: int = 0  # devices to simulate on CPU so collectives are real
    # Modules one of which the platform's JAX plugin installs; empty for JAX's built-in CPU.
    plugin_modules: tuple[str, ...] = ()

    # Lock files (docker/locks/<name>.txt) this backend's image can be built from; the first is
    # the default. Each is generated from pyproject.toml's extras of the same name.
    locks: tuple[str, ...] = ()

    @property
    def image(self) -> str:
        return f"jaxlab:{self.name}"

    @property
    def service(self) -> str:
        return f"lab-{self.name}"

    def plugin_installed(self) -> bool:
        return not self.plugin_modules or any(_importable(m) for m in self.plugin_modules)

    def device_present(self) -> bool:
        return not self.device_globs or any(glob.glob(g) for g in self.device_globs)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package is missing
        return False


BACKENDS: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend(
            name="cpu",
            platform="cpu",
            jax_extra="jax[cpu]",
            pip_extra="",
            description="any x86_64 or arm64 machine; 8 simulated devices",
            simulated_devices=8,
            locks=("cpu",),
        ),
        Backend(
            name="cuda",
            platform="gpu",
            jax_extra="jax[cuda13]",
            pip_extra="cuda",
            description="NVIDIA GPU, driver >= 580 (cuda13 wheels)",
            device_globs=("/dev/nvidia[0-9]*", "/proc/driver/nvidia/gpus/*"),
            container_args=("--gpus", "all"),
            # Several notebook kernels share one GPU; preallocating 75% each would starve them.
            env={"XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
            plugin_modules=("jax_plugins.xla_cuda13", "jax_plugins.xla_cuda12"),
            # cuda12 wheels for hosts whose driver is older than 580 (>= 525).
            locks=("cuda", "cuda12"),
        ),
        Backend(
            name="tpu",
            platform="tpu",
            jax_extra="jax[tpu]",
            pip_extra="tpu",
            description="Cloud TPU VM (libtpu)",
            device_globs=("/dev/accel[0-9]*", "/dev/vfio/[0-9]*"),
            # Cloud TPU VM practice: the TPU runtime needs the host's devices, network and a large /dev/shm.
            container_args=("--privileged", "--net=host", "--shm-size=16g"),
            plugin_modules=("libtpu",),
            locks=("tpu",),
        ),
    )
}

# The one name for the default backend, read by invoke (its config: jaxlab.backend), by pytest's
# --backend and set by each image, so `invoke lab` and `pytest` agree inside jaxlab:cuda.
BACKEND_VARIABLE = "INVOKE_JAXLAB_BACKEND"


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise UsageError(
            f"unknown backend {name!r}; valid backends: {', '.join(BACKENDS)}"
        ) from None


def require_device(backend: Backend) -> None:
    """Refuse before anything runs when the asked-for hardware is not on this machine."""
    if not backend.device_present():
        raise UsageError(
            f"backend {backend.name!r} needs {backend.description}, but no such device is on "
            f"this machine (looked for {', '.join(backend.device_globs)}); "
            f"use --backend cpu to run on the CPU"
        )
