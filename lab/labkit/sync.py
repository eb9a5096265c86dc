"""The files that name every backend, written from the registry (:mod:`labkit.backends`), and
the notebooks' text twins.

A person writes a backend once, in ``backends.py`` (with its extra in ``pyproject.toml`` and its
lock); ``invoke sync`` then writes what the Dockerfile, compose and the README say of it, each
between two marker lines that nothing else edits. ``invoke sync --check`` (and a test) says
whether any of them has fallen behind the registry.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import paths
from .backends import BACKENDS, TPU_GENERATIONS, Backend
from .errors import LabError, UsageError


@dataclass(frozen=True)
class Generated:
    """A block of ``path`` between the lines ``begin`` and ``end``, written by ``render``."""

    path: Path
    begin: str
    end: str
    render: Callable[[], str]

    def current(self) -> str:
        try:
            text = self.path.read_text()
        except OSError as err:
            raise UsageError(
                f"{self.path}: cannot be read ({err.strerror or err}); invoke sync fills in part "
                f"of a file that is there"
            ) from None
        if text.count(self.begin) != 1 or text.count(self.end) != 1:
            raise UsageError(
                f"{self.path}: the lines {self.begin!r} and {self.end!r} must each appear once; "
                f"put them back around the generated part"
            )
        return text

    def synced(self) -> str:
        """The file's text with the block written from the registry."""
        text = self.current()
        head, rest = text.split(self.begin, 1)
        _, tail = rest.split(self.end, 1)
        return f"{head}{self.begin}\n{self.render()}{self.end}{tail}"


# --- the Dockerfile: one stage per backend, with the environment its image starts JAX in


def dockerfile_stages() -> str:
    stages = []
    for b in BACKENDS.values():
        env = {"JAX_PLATFORMS": b.jax_platforms_value, **b.image_env, **b.env}
        lines = [f"{key}={value}" for key, value in env.items()]
        stages.append(f"FROM base AS env-{b.name}\nENV " + " \\\n    ".join(lines) + "\n")
    return "\n".join(stages)


# --- compose: one service per backend, under a profile of its name


def _compose_flags(b: Backend) -> list[str]:
    """How the registry's container flags read in compose, with the comments they need there. A
    flag not taught here stops `invoke sync`, rather than be dropped from the service."""
    args, lines, devices, i = list(b.container_args), [], [], 0
    while i < len(args):
        flag, value = args[i], None
        if "=" in flag:
            flag, value = flag.split("=", 1)
        elif flag in ("--gpus",):
            value, i = args[i + 1], i + 1
        i += 1
        if flag == "--gpus":
            assert value is not None  # --gpus always has one: after "=" or as the next argument
            count = "all" if value == "all" else int(value)
            lines += [
                "    # The GPUs, through the NVIDIA container toolkit.",
                "    deploy:",
                "      resources:",
                "        reservations:",
                "          devices:",
                "            - driver: nvidia",
                f"              count: {count}",
                "              capabilities: [gpu]",
            ]
        elif flag == "--device" and value:
            devices.append(value)
        elif flag == "--privileged":
            lines += ["    privileged: true"]
        elif flag in ("--net", "--network") and value == "host":
            lines += [
                "    # The host's network: JupyterLab listens on the machine itself, on its loopback only;",
                "    # reach it through an SSH tunnel (ssh ... -L 8888:127.0.0.1:8888).",
                "    network_mode: host",
                '    command: ["python3", "-m", "labkit.workspace", "jupyter", "lab", "--ip=127.0.0.1", '
                '"--no-browser",',
                '              "--ServerApp.root_dir=/home/lab/work"]',
                "    environment:",
                "      JUPYTER_TOKEN: ${JUPYTER_TOKEN:?set JUPYTER_TOKEN to the token JupyterLab will require}",
                "      JUPYTER_PORT: ${JAXLAB_PORT:-8888}",
            ]
        elif flag == "--shm-size" and value:
            lines += [f"    shm_size: {value}b" if value[-1] in "kmg" else f"    shm_size: {value}"]
        else:
            raise LabError(
                f"backend {b.name!r}: container flag {args[i - 1]!r} has no compose form in "
                f"labkit/sync.py; add one there"
            )
    if devices:
        lines += ["    devices:", *(f"      - {d}" for d in devices)]
    return lines


def compose_services() -> str:
    services = []
    for b in BACKENDS.values():
        lines = [
            f"  {b.service}:",
            "    <<: *lab",
            f"    profiles: [{b.name}]",
            f"    image: {b.image}",
            "    build:",
            "      <<: *build",
            f"      args: {{BACKEND: {b.name}}}",
        ]
        if b.description:
            lines.insert(1, f"    # {b.description}")
        flags = _compose_flags(b)
        if b.container_note:
            flags.insert(0, f"    # {b.container_note}.")
        if not any(line.strip() == "network_mode: host" for line in flags):
            lines += ["    ports:", '      - "127.0.0.1:${JAXLAB_PORT:-8888}:8888"']
        services.append("\n".join(lines + flags) + "\n")
    return "\n".join(services)


# --- the README: the backends table


def _at_once(b: Backend) -> str:
    if b.processes_at_once == 1:
        return "one step at a time"
    if b.processes_at_once:
        return f"{b.processes_at_once} steps at a time"
    return "one step per core" + (", all sharing the device" if b.device_globs else "")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def readme_table() -> str:
    rows = []
    for b in BACKENDS.values():
        extra = f'`pip install -e ".[{b.pip_extra}]"` (`{b.jax_extra}`)' if b.pip_extra else "`pip install -e .`"
        extra += "".join(f'; `".[{lock}]"`: {b.lock_notes[lock]}' for lock in b.locks[1:] if lock in b.lock_notes)
        others = [f"`--lock {lock}`" for lock in b.locks[1:]]
        image = f"`{b.image}`" + (f" ({', '.join(others)})" if others else "")
        flags = f"`{shlex.join(b.container_args)}`" if b.container_args else "none"
        if b.container_runtime:
            flags += f" (needs the {b.container_runtime} container runtime)"
        device = b.description + (
            f"; {b.simulated_devices} simulated devices"
            if b.simulated_devices and "simulated" not in b.description
            else ""
        )
        rows.append([f"`{b.name}`", f"`{b.jax_platforms_value}`", extra, image, flags, device, _at_once(b)])
    header = ["backend", "`JAX_PLATFORMS`", "in this Python", "image (`invoke build`)", "container flags", "device"]
    return markdown_table([*header, "at once"], rows)


def tpu_table() -> str:
    """The TPU generations, as a TPU VM or a pod slice of each is created (labkit.backends)."""
    header = ["generation", "`--version` (runtime)", "the size counts", "chips per host", "GKE node pool"]
    rows = [
        [
            f"`{g.prefix}`",
            f"`{g.runtime_version}`",
            g.counts,
            str(g.chips_per_host),
            f"`{g.gke_accelerator}`" if g.gke_accelerator else "none",
        ]
        for g in TPU_GENERATIONS.values()
    ]
    return markdown_table(header, rows)


MARK = "invoke sync writes this from lab/labkit/backends.py: edit the registry, not these lines"
GENERATED = [
    Generated(paths.ROOT / "docker" / "Dockerfile", f"# >>> {MARK}", "# <<< invoke sync", dockerfile_stages),
    Generated(paths.ROOT / "compose.yaml", f"  # >>> {MARK}", "  # <<< invoke sync", compose_services),
    Generated(paths.ROOT / "README.md", f"<!-- >>> {MARK} -->", "<!-- <<< invoke sync -->", readme_table),
    Generated(paths.ROOT / "README.md", f"<!-- >>> TPU: {MARK} -->", "<!-- <<< invoke sync: TPU -->", tpu_table),
]


# --- the notebooks' text twins: each lab/NN_topic.ipynb as lab/NN_topic.md (MyST markdown, as
# jax's own docs pair theirs), so that a change to a notebook reads as text in a review.

TWIN_FORMAT = "md:myst"


def twin(notebook: Path) -> Path:
    return notebook.with_suffix(".md")


def twin_text(notebook: Path) -> str:
    """The twin of ``notebook`` as jupytext writes it: every cell, its source and its metadata."""
    try:
        import jupytext
    except ImportError:
        raise LabError("jupytext is missing: install the dev extra, pip install -e '.[dev]'") from None
    import nbformat

    return jupytext.writes(nbformat.read(notebook, as_version=4), fmt=TWIN_FORMAT)


def _twins() -> dict[Path, str]:
    return {twin(nb): twin_text(nb) for nb in paths.notebook_paths()}


def _read(path: Path) -> str | None:
    return path.read_text() if path.is_file() else None


def stale() -> list[Path]:
    """The generated files that differ from what the registry and the notebooks say now."""
    blocks = [g.path for g in GENERATED if g.synced() != g.current()]
    return blocks + [path for path, text in _twins().items() if _read(path) != text]


def sync() -> list[Path]:
    """Write every generated block from the registry, and the notebooks' twins; the files that changed."""
    from .outdir import own_files, replace_file

    twins = _twins()
    own_files([g.path for g in GENERATED] + list(twins), "invoke sync")
    changed = []
    for g in GENERATED:
        text = g.synced()
        if text != g.current():
            replace_file(g.path, text.encode())
            changed.append(g.path)
    for path, text in twins.items():
        if _read(path) != text:
            replace_file(path, text.encode())
            changed.append(path)
    return changed
