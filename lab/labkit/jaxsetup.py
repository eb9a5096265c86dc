"""Start JAX on the asked-for backend, and refuse to run anywhere else.

JAX quietly falls back to the CPU when a GPU or TPU plugin fails to load, unless
``JAX_PLATFORMS`` names the platform. Notebooks and tests call :func:`setup` before touching
any array, so a "cuda" run either runs on the GPU or stops with a clear error. The platform list
also names ``cpu`` after the accelerator (host callbacks need it), so the check that JAX's
default backend is the accelerator is what rules out a fallback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re

from . import compile_cache
from .backends import get_backend
from .distributed import check_count, join
from .errors import LabError
from .gpu_memory import apply_share


class BackendMismatch(LabError):
    pass


def setup(backend_name: str, processes: int = 1):
    """Configure JAX for ``backend_name`` and return the ``jax`` module, verified. With
    ``processes`` over 1, this process first joins the run's others (see labkit.distributed)."""
    backend = get_backend(backend_name)
    os.environ["JAX_PLATFORMS"] = backend.jax_platforms_value
    for key, value in backend.env.items():
        os.environ.setdefault(key, value)

    if not backend.plugin_installed():
        extra = f'pip install -e ".[{backend.pip_extra}]"'
        raise BackendMismatch(
            f"backend {backend.name!r} asked for, but its JAX plugin ({backend.jax_extra}) "
            f"is not installed; {extra} installs it"
        )
    if backend.lease == "gpu":
        apply_share()  # a learner's bytes of a shared GPU, as a fraction of what is free now
    import jax

    jax.config.update("jax_platforms", os.environ["JAX_PLATFORMS"])
    compile_cache.configure(jax, backend.name)  # before the first compilation
    local_devices = simulated_per_process(backend.simulated_devices, processes)
    if local_devices:
        # Must happen before the first device query; later it is silently too late.
        jax.config.update("jax_num_cpu_devices", local_devices)
    if processes > 1 and backend.platform == "cpu":
        jax.config.update("jax_cpu_collectives_implementation", "gloo")  # collectives across processes
    join(jax, processes)
    try:
        with _plugin_log_held() as held:
            found = jax.default_backend()
    except (RuntimeError, AssertionError) as err:  # the plugin failed to load or found no device
        # JAX 0.10 reports a CUDA plugin that found no GPU as a bare AssertionError.
        first = str(err).strip().splitlines()[0] if str(err).strip() else "its plugin found no usable device"
        if busy := _held_elsewhere(first):
            raise BackendMismatch(f"backend {backend.name!r}: {busy}") from err
        raise BackendMismatch(
            f"backend {backend.name!r} asked for, but JAX could not start platform "
            f"{backend.platform!r}: {first} (is the device visible here? in a container: "
            f"{' '.join(backend.container_args) or 'no extra flags'})"
        ) from err
    if found != backend.platform:
        why = f" ({held.first})" if held.first else ""
        raise BackendMismatch(
            f"backend {backend.name!r} asked for, but JAX runs on {found!r}: its plugin found no "
            f"{backend.platform} device{why} (is it visible here? in a container: "
            f"{' '.join(backend.container_args) or 'no extra flags'}); refusing to fall back silently"
        )
    held.replay()  # JAX started where it was asked to: what the plugin logged is shown as usual
    check_count(jax, processes)
    if local_devices and jax.local_device_count() != local_devices:
        raise BackendMismatch(
            f"expected {local_devices} simulated CPU devices, found "
            f"{jax.local_device_count()}: JAX was started before labkit.setup()"
        )
    return jax


def simulated_per_process(simulated: int, processes: int) -> int:
    """Simulated CPU devices for each of ``processes``: the backend's count shared out, so that a
    run in several processes has the same global mesh (8 devices as 2 x 4) and its results are
    those of one process."""
    return max(1, simulated // processes) if simulated else 0


class _HeldLog(logging.Handler):
    """What JAX logs while a plugin starts. A plugin that finds no device logs a long traceback
    and JAX goes on to the CPU; the refusal that follows says the same in one line (with this
    log's first line), so the traceback is held back unless JAX did start on the device."""

    def __init__(self, logger: logging.Logger):
        super().__init__()
        self.logger = logger
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def first(self) -> str:
        for record in self.records:
            cause = record.exc_info[1] if record.exc_info else None
            text = str(cause or record.getMessage()).strip()
            if text:
                return text.splitlines()[0]
        return ""

    def replay(self) -> None:
        for record in self.records:
            self.logger.handle(record)
        self.records = []


@contextlib.contextmanager
def _plugin_log_held():
    logger = logging.getLogger("jax._src.xla_bridge")
    held, propagate = _HeldLog(logger), logger.propagate
    logger.addHandler(held)
    logger.propagate = False
    try:
        yield held
    finally:
        logger.removeHandler(held)
        logger.propagate = propagate


_IN_USE = re.compile(r"already in use by (?:another process|process with pid (?P<pid>\d+))", re.I)


def _held_elsewhere(message: str) -> str | None:
    """libtpu lets one process at a time open a TPU; a second kernel (JupyterLab, a second lab)
    gets this, said so that a learner knows what to do."""
    if not (m := _IN_USE.search(message)):
        return None
    who = f"process {m['pid']}" if m["pid"] else "another process"
    return (
        f"the device is held by {who}, and only one process at a time can open it: shut down the "
        f"other notebook's kernel (JupyterLab: Running Terminals and Kernels), then restart this one"
    )
