"""The one registry of backends.

Everything that differs between CPU, NVIDIA GPU and Cloud TPU runs is described here once:
the JAX platform name, the pip extra that installs its plugin, what a container needs to see
the device, and the names of its image and compose service. Tasks, the runner and the tests read
this table; ``invoke sync`` (labkit.sync) writes what ``docker/Dockerfile``, ``compose.yaml`` and
the README say of each backend from it.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from dataclasses import dataclass, field

from .errors import UsageError


@dataclass(frozen=True)
class Looser:
    """A bound looser than the dtype's default on one backend, and why (see labkit.tolerance)."""

    atol: float
    rtol: float
    reason: str


@dataclass(frozen=True)
class Backend:
    name: str
    platform: str  # what jax.default_backend() reports
    # JAX_PLATFORMS: the platform first, then "cpu", which host callbacks (jax.debug.print,
    # jax.debug.callback, io_callback, pure_callback) need on an accelerator. JAX still defaults to
    # the first; labkit.setup checks that it did, so there is no silent fallback to the CPU.
    jax_platforms: tuple[str, ...]
    jax_extra: str  # the requirement that brings the platform's plugin
    pip_extra: str  # this project's optional dependency group (pyproject.toml)
    description: str
    # Floating dtypes the backend computes in, as jax/_src/test_util.py's supported_dtypes().
    # float64 needs jax_enable_x64; the consistency checks run it in a process of its own.
    dtypes: tuple[str, ...]
    # dtype -> a looser bound than the dtype's default on this backend, with its reason.
    tolerances: dict[str, Looser] = field(default_factory=dict)
    # Device nodes whose presence shows the hardware is on this machine; empty means always there.
    device_globs: tuple[str, ...] = ()
    container_args: tuple[str, ...] = ()
    container_note: str = ""  # why the container needs those flags, for compose.yaml's reader
    # A container runtime the engine must have to pass the device through ("nvidia"), if any.
    container_runtime: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    # Set in the image only, for the engine's runtime (not for JAX): what it passes through.
    image_env: dict[str, str] = field(default_factory=dict)
    simulated_devices: int = 0  # devices to simulate on CPU so collectives are real
    # How many processes may hold the device at once (0: as many as there are cores). A GPU is
    # shared by every kernel; libtpu lets one process at a time open a TPU.
    processes_at_once: int = 0
    # How a class shares the device, one learner each (labkit.hub.leases): "none" (cores and memory
    # only), "gpu" (a whole GPU or MIG instance each, or memory shares of time-sliced GPUs), or
    # "chip" (one TPU chip each).
    lease: str = "none"
    # The device as Kubernetes schedules it (its device plugin's resource), for a JobSet's pods
    # (labkit.jobset); empty where a pod needs none.
    kubernetes_resource: str = ""
    # Modules one of which the platform's JAX plugin installs; empty for JAX's built-in CPU.
    plugin_modules: tuple[str, ...] = ()

    # Lock files (docker/locks/<name>.txt) this backend's image can be built from; the first is
    # the default. Each is generated from pyproject.toml's extras of the same name.
    locks: tuple[str, ...] = ()
    lock_notes: dict[str, str] = field(default_factory=dict)  # when to take a lock other than the first
    # lock -> the distribution in it that brings the platform's plugin (none for the CPU).
    plugin_packages: dict[str, str] = field(default_factory=dict)

    @property
    def image(self) -> str:
        return f"jaxlab:{self.name}"

    @property
    def service(self) -> str:
        return f"lab-{self.name}"

    @property
    def jax_platforms_value(self) -> str:
        """``JAX_PLATFORMS`` as the environment spells it."""
        return ",".join(self.jax_platforms)

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
            jax_platforms=("cpu",),
            jax_extra="jax[cpu]",
            pip_extra="",
            description="any x86_64 or arm64 machine; 8 simulated devices",
            dtypes=("float64", "float32", "bfloat16", "float16"),
            simulated_devices=8,
            locks=("cpu",),
        ),
        Backend(
            name="cuda",
            platform="gpu",
            jax_platforms=("cuda", "cpu"),
            jax_extra="jax[cuda13]",
            pip_extra="cuda",
            description="NVIDIA GPU, driver >= 580 (cuda13 wheels)",
            dtypes=("float64", "float32", "bfloat16", "float16"),
            tolerances={
                "float32": Looser(
                    1e-5,
                    1e-5,
                    "GPU reductions use tree orders and fused multiply-adds that differ from CPU's by a few ulps",
                )
            },
            device_globs=("/dev/nvidia[0-9]*", "/proc/driver/nvidia/gpus/*"),
            container_args=("--gpus", "all"),
            container_runtime="nvidia",
            # Several notebook kernels share one GPU; preallocating 75% each would starve them.
            env={"XLA_PYTHON_CLIENT_PREALLOCATE": "false"},
            lease="gpu",
            kubernetes_resource="nvidia.com/gpu",
            # The pip CUDA wheels bring CUDA itself; the NVIDIA container runtime only needs these.
            image_env={"NVIDIA_VISIBLE_DEVICES": "all", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility"},
            plugin_modules=("jax_plugins.xla_cuda13", "jax_plugins.xla_cuda12"),
            locks=("cuda", "cuda12"),
            lock_notes={"cuda12": "cuda12 wheels, for a driver older than 580 (>= 525)"},
            plugin_packages={"cuda": "jax-cuda13-plugin", "cuda12": "jax-cuda12-plugin"},
        ),
        Backend(
            name="tpu",
            platform="tpu",
            jax_platforms=("tpu", "cpu"),
            jax_extra="jax[tpu]",
            pip_extra="tpu",
            description="Cloud TPU VM (libtpu)",
            # float64 is emulated with 32-bit operations (see tolerances), and checked like the others.
            dtypes=("float64", "float32", "bfloat16", "float16"),
            tolerances={
                "float32": Looser(
                    1e-3,
                    1e-3,
                    "TPU transcendental functions (exp, log, tanh) are approximations accurate to ~1e-4 "
                    "relative even in float32",
                ),
                "float64": Looser(
                    1e-6,
                    1e-6,
                    "TPUs have no float64 units: XLA emulates float64 with 32-bit operations, accurate "
                    "to about float32's bound, not float64's",
                ),
            },
            device_globs=("/dev/accel[0-9]*", "/dev/vfio/[0-9]*"),
            container_args=("--privileged", "--net=host", "--shm-size=16g"),
            container_note="Cloud TPU VM practice: the TPU runtime needs the host's devices, network and a "
            "large /dev/shm",
            # The lab's notebooks and checks take turns on the TPU; see the README.
            processes_at_once=1,
            lease="chip",
            kubernetes_resource="google.com/tpu",
            plugin_modules=("libtpu",),
            locks=("tpu",),
            plugin_packages={"tpu": "libtpu"},
        ),
    )
}


@dataclass(frozen=True)
class TpuGeneration:
    """One Cloud TPU generation, as Cloud TPU's documentation describes it: the software (runtime)
    version a TPU VM of it boots (``gcloud ... create --version``; a mismatched one boots a VM that
    SSH cannot reach), what the number in its accelerator type counts, and its chips per host."""

    prefix: str  # the accelerator type's name before the dash: v4 in v4-32
    runtime_version: str
    counts: str  # what "-N" counts: "cores" (TensorCores, two per chip) or "chips"
    chips_per_host: int  # chips on each TPU VM of a slice of several hosts
    gke_accelerator: str  # GKE's node label for it (cloud.google.com/gke-tpu-accelerator)
    dimensions: int  # its chips' torus: 2 (x by y) or 3 (x by y by z)

    def chips(self, count: int) -> int:
        return count // 2 if self.counts == "cores" else count

    def hosts(self, count: int) -> int:
        return max(1, self.chips(count) // self.chips_per_host)

    def topology(self, count: int) -> str:
        """The slice's chips as GKE names their shape: 4x4 for v5litepod-16, 2x2x4 for v4-32.
        Powers of two, doubled one axis at a time as the documented shapes grow."""
        dims = [1] * self.dimensions
        order = [0, 1] if self.dimensions == 2 else [0, 1, 2]
        chips, step = self.chips(count), 0
        while chips > 1:
            axis = order[step] if step < len(order) else order[::-1][(step - len(order)) % len(order)]
            dims[axis] *= 2
            chips //= 2
            step += 1
        if self.dimensions == 2:
            dims.sort()
        return "x".join(map(str, dims))


# The TPU backend's generations (cloud.google.com/tpu/docs/runtimes and each generation's page).
TPU_GENERATIONS = {
    g.prefix: g
    for g in (
        TpuGeneration("v2", "tpu-ubuntu2204-base", "cores", 4, "", 2),
        TpuGeneration("v3", "tpu-ubuntu2204-base", "cores", 4, "", 2),
        TpuGeneration("v4", "tpu-ubuntu2204-base", "cores", 4, "tpu-v4-podslice", 3),
        TpuGeneration("v5litepod", "v2-alpha-tpuv5-lite", "chips", 8, "tpu-v5-lite-podslice", 2),  # v5e
        TpuGeneration("v5p", "v2-alpha-tpuv5", "cores", 4, "tpu-v5p-slice", 3),
        TpuGeneration("v6e", "v2-alpha-tpuv6e", "chips", 8, "tpu-v6e-slice", 2),
    )
}


def tpu_slice(accelerator_type: str) -> tuple[TpuGeneration, int]:
    """(the generation, the number of hosts) of an accelerator type such as v4-32 or v5litepod-16."""
    prefix, _, count = accelerator_type.partition("-")
    if prefix not in TPU_GENERATIONS or not count.isdigit() or int(count) < 1:
        raise UsageError(
            f"unknown accelerator type {accelerator_type!r}; give <generation>-<size>, e.g. v4-32 or "
            f"v5litepod-16, with a generation of {', '.join(TPU_GENERATIONS)}"
        )
    generation = TPU_GENERATIONS[prefix]
    return generation, generation.hosts(int(count))


# The one name for the default backend, read by invoke (its config: jaxlab.backend), by pytest's
# --backend and set by each image, so `invoke lab` and `pytest` agree inside jaxlab:cuda.
BACKEND_VARIABLE = "INVOKE_JAXLAB_BACKEND"


def default_backend() -> str:
    """The backend when none is named: ``$INVOKE_JAXLAB_BACKEND``, else cpu."""
    return os.environ.get(BACKEND_VARIABLE) or "cpu"


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise UsageError(f"unknown backend {name!r}; valid backends: {', '.join(BACKENDS)}") from None


def require_device(backend: Backend) -> None:
    """Refuse before anything runs when the asked-for hardware is not on this machine."""
    if not backend.device_present():
        raise UsageError(
            f"backend {backend.name!r} needs {backend.description}, but no such device is on "
            f"this machine (looked for {', '.join(backend.device_globs)}); "
            f"use --backend cpu to run on the CPU"
        )
