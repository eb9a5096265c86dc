"""The container runtime: build a backend's image and run the same runner inside it.

The engine (``docker`` or ``podman``) and extra build/run arguments come from invoke's config
(``jaxlab.engine``, ``jaxlab.build_args``, ``jaxlab.run_args``, or ``INVOKE_JAXLAB_*``), so
machines without a bridge network or behind a proxy need no code change.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from . import outdir, paths, pins, processes, signals
from .backends import Backend, get_backend, require_device
from .environment import lab_revision
from .errors import LabError, UsageError

IMAGE_ROOT = "/home/lab/jaxlab"  # JAXLAB_ROOT inside the images (docker/Dockerfile)


@dataclass
class Engine:
    command: str = "docker"
    build_args: list[str] = field(default_factory=list)
    run_args: list[str] = field(default_factory=list)
    compose: list[str] = field(default_factory=lambda: ["docker", "compose"])
    # Set once the engine has answered: choosing the runtime and checking the backend both ask.
    _answered: bool = field(default=False, init=False, repr=False, compare=False)

    @classmethod
    def from_env(cls) -> Engine:
        """The engine as invoke's ``INVOKE_JAXLAB_*`` variables set it (for code run outside invoke)."""
        return cls.from_config(
            {
                "jaxlab": {
                    key: os.environ[f"INVOKE_JAXLAB_{key.upper()}"]
                    for key in ("engine", "build_args", "run_args", "compose")
                    if f"INVOKE_JAXLAB_{key.upper()}" in os.environ
                }
            }
        )

    @classmethod
    def from_config(cls, config) -> Engine:
        section = config.get("jaxlab", {})
        return cls(
            section.get("engine", "docker"),
            shlex.split(section.get("build_args", "")),
            shlex.split(section.get("run_args", "")),
            shlex.split(section.get("compose", "docker compose")),
        )

    def answers(self) -> bool:
        if self._answered:
            return True
        if not shutil.which(self.command):
            return False
        done = subprocess.run(
            [self.command, "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True, timeout=30
        )
        self._answered = done.returncode == 0 and bool(done.stdout.strip())
        return self._answered

    @property
    def is_podman(self) -> bool:
        return Path(self.command).name.startswith("podman")

    def image_field(self, image: str, template: str) -> str | None:
        """What ``image inspect --format template`` prints for ``image``; None when there is no
        such image (or the field is empty). Every question the lab asks of an image goes here."""
        done = subprocess.run(
            [self.command, "image", "inspect", "--format", template, image], capture_output=True, text=True
        )
        return (done.stdout.strip() or None) if done.returncode == 0 else None

    def require(self, instead: str = "") -> None:
        """A one-line refusal unless the engine answers. ``instead`` is what the command could do
        without one (``lab`` runs in this Python: :data:`LOCAL`); most commands have nothing."""
        if not self.answers():
            raise UsageError(
                f"no container engine answers ({self.command!r}); start one, or name another with "
                f"INVOKE_JAXLAB_ENGINE{instead}"
            )


# What `invoke lab` can do where the image cannot run: the same lab in this Python.
LOCAL = ", or run in this Python with --runtime local"


def tags(backend: Backend) -> list[str]:
    return [backend.image, f"{backend.image}-jax{pins.version('jax')}"]


def pip_cert() -> Path | None:
    """The CA bundle pip must trust (corporate proxies, intercepting TLS), if one is set."""
    for var in ("PIP_CERT", "SSL_CERT_FILE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    return None


LOCK_LABEL = "org.jaxlab.lock"


def built_lock(engine: Engine, backend: Backend) -> str | None:
    """The lock the backend's existing image was built from, if there is one."""
    return engine.image_field(backend.image, f'{{{{ index .Config.Labels "{LOCK_LABEL}" }}}}')


def pruned(lock: str) -> list[str]:
    """The globs (relative to site-packages) that docker/prune/<lock>.txt deletes from an image."""
    listing = paths.ROOT / "docker" / "prune" / f"{lock}.txt"
    if not listing.exists():
        return []
    lines = (line.strip() for line in listing.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def build_command(engine: Engine, backend: Backend, lock: str | None = None, context: Path = paths.ROOT) -> list[str]:
    lock = lock or backend.locks[0]
    if lock not in backend.locks:
        raise UsageError(f"backend {backend.name!r} has no lock {lock!r}; valid: {', '.join(backend.locks)}")
    cmd = [
        engine.command,
        "build",
        "-f",
        str(context / "docker" / "Dockerfile"),
        "--build-arg",
        f"BACKEND={backend.name}",
        "--build-arg",
        f"LOCK={lock}",
        "--build-arg",
        f"JAXLAB_REVISION={lab_revision()}",
    ]
    for tag in tags(backend):
        cmd += ["-t", tag]
    if cert := pip_cert():
        # A BuildKit secret: mounted for the pip step only, never written to a layer.
        cmd += ["--secret", f"id=pip_cert,src={cert}"]
    return cmd + engine.build_args + [str(context)]


def build(engine: Engine, backend_name: str, lock: str | None = None, quiet: bool = False) -> None:
    backend = get_backend(backend_name)
    engine.require()
    # Without an explicit lock, a rebuild keeps the one the existing image was built from.
    lock = lock or built_lock(engine, backend)
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    if quiet:
        print(f"building {backend.image} (cached layers are reused) ...", file=sys.stderr, flush=True)
    # Quiet: the build log is kept, and only shown when the build fails.
    done = subprocess.run(build_command(engine, backend, lock), env=env, text=True, capture_output=quiet)
    if done.returncode:
        if quiet:
            print(done.stderr[-4000:], file=sys.stderr)
        raise LabError(f"building {backend.image} failed (exit {done.returncode})")


def image_revision(engine: Engine, backend: Backend) -> str | None:
    """The lab revision the backend's existing image was built from (its JAXLAB_REVISION)."""
    env = engine.image_field(backend.image, "{{json .Config.Env}}")
    if env is None:
        return None
    return dict(item.partition("=")[::2] for item in json.loads(env)).get("JAXLAB_REVISION")


def ensure_image(engine: Engine, backend: Backend) -> None:
    """Build the backend's image unless it was built from this very revision of a clean checkout
    (as after `invoke bundle --load` in a room without internet, where a build could not fetch).
    A checkout with changes always rebuilds: cached layers make that quick."""
    revision = lab_revision()
    if revision.endswith("-dirty") or image_revision(engine, backend) != revision:
        build(engine, backend.name, quiet=True)


# Where the NVIDIA container toolkit writes the CDI specs podman reads (nvidia-ctk cdi generate).
CDI_DIRS = (Path("/etc/cdi"), Path("/var/run/cdi"))
GPU_FLAGS = ("--gpus", "all")
CDI_GPU_FLAGS = ("--device", "nvidia.com/gpu=all")


def container_args(engine: Engine, backend: Backend) -> list[str]:
    """The backend's container flags in the engine's dialect: podman reaches NVIDIA GPUs through
    CDI, not docker's --gpus."""
    args = list(backend.container_args)
    if engine.is_podman:
        for i in range(len(args) - 1):
            if tuple(args[i : i + 2]) == GPU_FLAGS:
                args[i : i + 2] = CDI_GPU_FLAGS
    return args


def require_gpu_runtime(engine: Engine, instead: str = "") -> None:
    if engine.is_podman:
        specs = [f for d in CDI_DIRS if d.is_dir() for f in d.iterdir() if f.suffix in (".yaml", ".yml", ".json")]
        if not any("nvidia.com/gpu" in f.read_text(errors="replace") for f in specs if f.is_file()):
            raise UsageError(
                "backend 'cuda' with podman needs a CDI spec for the NVIDIA GPUs, but "
                f"{' and '.join(map(str, CDI_DIRS))} have none; run 'sudo nvidia-ctk cdi generate "
                f"--output=/etc/cdi/nvidia.yaml'{instead}"
            )
        return
    done = subprocess.run(
        [engine.command, "info", "--format", "{{json .Runtimes}}"], capture_output=True, text=True, timeout=30
    )
    hooks = any(shutil.which(t) for t in ("nvidia-container-runtime-hook", "nvidia-ctk"))
    if "nvidia" not in done.stdout and not hooks:
        raise UsageError(
            "backend 'cuda' needs the NVIDIA container toolkit, but the engine has no nvidia "
            f"runtime; install nvidia-container-toolkit{instead}"
        )


def run_command(
    engine: Engine,
    backend: Backend,
    inner: list[str],
    mounts: Sequence[tuple[Path, str]] = (),
    interactive: bool = False,
    name: str | None = None,
    extra: list[str] | None = None,
) -> list[str]:
    cmd = [engine.command, "run", "--rm"]
    if interactive:
        cmd += ["-it"]
    if name:
        cmd += ["--name", name]
    for host, inside in mounts:
        cmd += ["-v", f"{host}:{inside}"]
    return cmd + container_args(engine, backend) + engine.run_args + (extra or []) + [backend.image] + inner


def check_backend(engine: Engine, backend: Backend, instead: str = "") -> None:
    """The host must have the device (the container only sees what the host has) and, for
    GPUs, the engine must be able to pass it through. ``instead``: see :meth:`Engine.require`."""
    require_device(backend)
    engine.require(instead)
    if backend.container_runtime == "nvidia":
        require_gpu_runtime(engine, instead)


NOTEBOOK_MOUNTS = "/mnt/notebooks"  # where notebooks from outside the lab appear in the container
REFERENCE_MOUNT = "/mnt/reference"  # where --against's folder appears in the container


def notebook_args(notebooks: list[str]) -> tuple[list[str], list[tuple[Path, str]]]:
    """The ``-n`` arguments for the lab inside the image, and the mounts they need.

    Names and numbers go through as they are (the runner inside resolves them); the lab's own
    notebook files go by name (the image, just rebuilt, has them); any other notebook file is
    mounted read-only from its folder."""
    args: list[str] = []
    folders: dict[Path, str] = {}
    lab_dir = paths.NOTEBOOKS.resolve()
    for nb in notebooks:
        path = Path(nb).expanduser()
        if not (path.suffix == ".ipynb" and path.is_file()):
            args += ["-n", nb]
            continue
        path = path.resolve()
        if path.parent == lab_dir:
            args += ["-n", path.stem]
            continue
        folder = folders.setdefault(path.parent, f"{NOTEBOOK_MOUNTS}/{len(folders)}")
        args += ["-n", f"{folder}/{path.name}"]
    return args, [(host, f"{inside}:ro") for host, inside in folders.items()]


def run_lab(
    engine: Engine,
    backend_name: str,
    notebooks: list[str],
    given: dict,
    out: Path | None,
    jobs: int | None,
    checks: bool,
    cell_timeout: float | None = None,
    compare: bool = True,
    against: str | None = None,
) -> int:
    """Build the image where it is not current (see :func:`ensure_image`), then ``invoke lab`` inside
    it; the run lands in the host's ``out`` (default out/<backend>/) by the same rules as a local
    run. Returns the exit code."""
    backend = get_backend(backend_name)
    check_backend(engine, backend, LOCAL)
    ensure_image(engine, backend)
    selected, mounts = notebook_args(notebooks)
    inner = [
        "invoke",
        "lab",
        "--runtime",
        "local",
        "--backend",
        backend.name,
        "--out",
        f"{IMAGE_ROOT}/out/{RUN}",
        *selected,
    ]
    for name, value in given.items():
        inner += ["-p", f"{name}={value}"]
    if jobs:
        inner += ["--jobs", str(jobs)]
    if cell_timeout:
        inner += ["--cell-timeout", str(cell_timeout)]
    if not checks:
        inner += ["--no-checks"]
    if not compare:
        inner += ["--no-compare"]
    elif against:  # a reference of the host's, mounted read-only (the image has the CPU's own)
        file = Path(against).resolve()
        mounts.append((file.parent, f"{REFERENCE_MOUNT}:ro"))
        inner += ["--against", f"{REFERENCE_MOUNT}/{file.name}"]
    out = outdir.check(out or paths.OUT / backend.name)
    # The container writes into a staging folder of the host's, which the host then moves into
    # place: the host holds the lock and keeps the user's files safe, whoever the container runs as.
    with outdir.staged(out, backend.name) as staging:
        mounts.append((staging, f"{IMAGE_ROOT}/out"))
        with image_user(staging) as user:
            code = run_attached(
                engine, run_command(engine, backend, inner, mounts, name=container_name(backend), extra=user)
            )
        if (staging / RUN).is_dir():  # a finished run, passed or failed (marked by the lab inside)
            outdir.promote(staging / RUN, out)
        return code


RUN = "run"  # the folder the container's lab writes inside its staging mount
IMAGE_UID = 1000  # the images' non-root user (LAB_UID in docker/Dockerfile)


@contextmanager
def image_user(folder: Path) -> Iterator[list[str]]:
    """The ``run`` arguments for who the container runs as: the invoking user, so what it writes
    in ``folder`` is theirs; never root. Root instead gets the image's own user, and ``folder`` is
    lent to it for the block: afterwards every path in it is given back to its owner, and what the
    container made to the folder's owner."""
    if os.getuid() != 0:
        yield ["--user", f"{os.getuid()}:{os.getgid()}", "-e", "HOME=/tmp"]
        return
    owners = {path: (path.lstat().st_uid, path.lstat().st_gid) for path in [folder, *folder.rglob("*")]}
    for path in owners:
        os.chown(path, IMAGE_UID, IMAGE_UID, follow_symlinks=False)
    try:
        yield []
    finally:
        for path in [folder, *folder.rglob("*")]:
            os.chown(path, *owners.get(path, owners[folder]), follow_symlinks=False)


def container_name(backend: Backend) -> str:
    return f"jaxlab-{backend.name}-{os.getpid()}"


def run_attached(engine: Engine, cmd: list[str], env: dict | None = None) -> int:
    """Run a container in the foreground; however this process ends (Ctrl-C, SIGTERM, SIGHUP, an
    error), the container is stopped before it returns. ``cmd`` names the container (--name).
    Should this process be killed outright, the engine's client gets SIGTERM, which it passes
    on to the container's lab (see :func:`processes.with_parent`)."""
    name = cmd[cmd.index("--name") + 1]
    proc = subprocess.Popen(cmd, env=env, preexec_fn=processes.with_parent())
    try:
        return proc.wait()
    except BaseException:
        with signals.deferred():
            stop_container(engine, name)
            proc.wait()
        raise


def stop_container(engine: Engine, name: str) -> None:
    """Stop ``name`` and remove it (it was started with --rm; removing is then a no-op)."""
    subprocess.run([engine.command, "stop", "-t", "10", name], capture_output=True)
    subprocess.run([engine.command, "rm", "-f", name], capture_output=True)


def out_mount() -> list[tuple[Path, str]]:
    """The host's out/ (made if missing) mounted where the image's lab writes."""
    out = paths.OUT.resolve()
    out.mkdir(parents=True, exist_ok=True)
    return [(out, f"{IMAGE_ROOT}/out")]


JUPYTER_START_SECONDS = 120


def jupyter(
    engine: Engine,
    backend_name: str,
    port: int = 8888,
    work: Path | None = None,
    reset: list[str] | tuple[str, ...] = (),
    anywhere: bool = False,
) -> None:
    """JupyterLab in the image, published on 127.0.0.1 only, with a token, on the learner's
    workspace ``work`` (default ./work): a host folder that survives the container, seeded with
    the handouts on first start. ``reset`` puts those handouts back (the learner's copies kept).
    ``work`` lies in the home folder or the checkout unless ``anywhere``.
    The URL is printed once the server answers; the container is stopped when this ends."""
    import secrets

    from . import handouts, workspace

    backend = get_backend(backend_name)
    # The folder first: a refusal says what is wrong with it before any engine is asked, and
    # nothing is created for a request that is refused.
    work = outdir.learner_folder(work or paths.ROOT / "work", "--work", anywhere)
    if ":" in str(work):  # the engine's -v splits at colons: it would mount something else
        raise UsageError(f"--work {work}: a colon in the path cannot be mounted; give a folder without one")
    for name in reset:  # the handouts bear the notebooks' names
        workspace.pick(name, paths.notebook_paths())
    check_backend(engine, backend)
    work.mkdir(parents=True, exist_ok=True)
    if reset:
        with tempfile.TemporaryDirectory(prefix="jaxlab-handouts-") as fresh:
            handouts.write(Path(fresh))
            for name in reset:
                put, kept = workspace.reset(work, Path(fresh), name)
                print(f"reset {put.name}" + (f" (yours kept as {kept.name})" if kept else ""), file=sys.stderr)
    ensure_image(engine, backend)
    token = os.environ.get("JUPYTER_TOKEN") or secrets.token_hex(24)
    # On the host's own network (TPU VMs, engines without a bridge) listen on its loopback only.
    args = container_args(engine, backend) + engine.run_args
    host_net = any(a in ("--net=host", "--network=host", "host") for a in args)
    inner = [
        "python3",
        "-m",
        "labkit.workspace",
        "jupyter",
        "lab",
        f"--ip={'127.0.0.1' if host_net else '0.0.0.0'}",
        "--no-browser",
        f"--ServerApp.root_dir={workspace.IMAGE_WORK}",
    ]
    name = container_name(backend)
    # The token reaches the container from this process's environment (-e NAME without a value),
    # never on a command line that ps would show.
    extra = ["-p", f"127.0.0.1:{port}:{port}", "-e", f"JUPYTER_PORT={port}", "-e", "JUPYTER_TOKEN"]
    url = f"http://127.0.0.1:{port}"
    watcher = threading.Thread(target=_announce, args=(url, token, name, engine, work), daemon=True)
    with image_user(work) as user:
        cmd = run_command(
            engine, backend, inner, [*out_mount(), (work, workspace.IMAGE_WORK)], name=name, extra=extra + user
        )
        watcher.start()
        code = run_attached(engine, cmd, env=dict(os.environ, JUPYTER_TOKEN=token))
    if code:
        raise LabError(f"JupyterLab in {backend.image} ended with exit code {code}")


def _announce(url: str, token: str, name: str, engine: Engine, work: Path) -> None:
    """Print the URL once JupyterLab answers with its token."""
    import urllib.request

    deadline = time.monotonic() + JUPYTER_START_SECONDS
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                print(f"JupyterLab: {url}/lab?token={token}  (your notebooks: {work})", flush=True)
                return
        except OSError:  # not up yet (HTTPError is an OSError too)
            pass
        time.sleep(1)
    print(
        f"JupyterLab did not answer on {url} within {JUPYTER_START_SECONDS} s; see `{engine.command} logs {name}`",
        file=sys.stderr,
        flush=True,
    )


def shell(engine: Engine, backend_name: str) -> None:
    backend = get_backend(backend_name)
    check_backend(engine, backend)
    ensure_image(engine, backend)
    run_attached(
        engine, run_command(engine, backend, ["bash"], out_mount(), interactive=True, name=container_name(backend))
    )
