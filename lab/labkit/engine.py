"""The container engine (``docker`` or ``podman``): every call the lab makes to it goes through
:class:`Engine`, with each engine's dialect (podman reaches NVIDIA GPUs through CDI, saves
several tags with --multi-image-archive) kept here.

The engine and extra build/run arguments come from invoke's config (``jaxlab.engine``,
``jaxlab.build_args``, ``jaxlab.run_args``, or ``INVOKE_JAXLAB_*``), so machines without a bridge
network or behind a proxy need no code change.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import processes, signals
from .backends import Backend
from .errors import LabError, UsageError

CHUNK = 1 << 20

# Where the NVIDIA container toolkit writes the CDI specs podman reads (nvidia-ctk cdi generate).
CDI_DIRS = (Path("/etc/cdi"), Path("/var/run/cdi"))
GPU_FLAGS = ("--gpus", "all")
CDI_GPU_FLAGS = ("--device", "nvidia.com/gpu=all")

# What `invoke lab` can do where the image cannot run: the same lab in this Python.
LOCAL = ", or run in this Python with --runtime local"


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

    @property
    def is_podman(self) -> bool:
        return Path(self.command).name.startswith("podman")

    # --- is it there

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

    def require(self, instead: str = "") -> None:
        """A one-line refusal unless the engine answers. ``instead`` is what the command could do
        without one (``lab`` runs in this Python: :data:`LOCAL`); most commands have nothing."""
        if not self.answers():
            raise UsageError(
                f"no container engine answers ({self.command!r}); start one, or name another with "
                f"INVOKE_JAXLAB_ENGINE{instead}"
            )

    def require_gpu_runtime(self, backend: Backend, instead: str = "") -> None:
        """The engine can pass NVIDIA GPUs through: podman with a CDI spec, docker with the
        NVIDIA container toolkit; else a one-line refusal."""
        if self.is_podman:
            specs = [f for d in CDI_DIRS if d.is_dir() for f in d.iterdir() if f.suffix in (".yaml", ".yml", ".json")]
            if not any("nvidia.com/gpu" in f.read_text(errors="replace") for f in specs if f.is_file()):
                raise UsageError(
                    f"backend {backend.name!r} with podman needs a CDI spec for the NVIDIA GPUs, but "
                    f"{' and '.join(map(str, CDI_DIRS))} have none; run 'sudo nvidia-ctk cdi generate "
                    f"--output=/etc/cdi/nvidia.yaml'{instead}"
                )
            return
        done = subprocess.run(
            [self.command, "info", "--format", "{{json .Runtimes}}"], capture_output=True, text=True, timeout=30
        )
        hooks = any(shutil.which(t) for t in ("nvidia-container-runtime-hook", "nvidia-ctk"))
        if "nvidia" not in done.stdout and not hooks:
            raise UsageError(
                f"backend {backend.name!r} needs the NVIDIA container toolkit, but the engine has no nvidia "
                f"runtime; install nvidia-container-toolkit{instead}"
            )

    # --- images

    def image_field(self, image: str, template: str) -> str | None:
        """What ``image inspect --format template`` prints for ``image``; None when there is no
        such image (or the field is empty). Every question the lab asks of an image goes here."""
        done = subprocess.run(
            [self.command, "image", "inspect", "--format", template, image], capture_output=True, text=True
        )
        return (done.stdout.strip() or None) if done.returncode == 0 else None

    def bridge_gateway(self) -> str | None:
        """The host's address on the engine's default network, where containers reach a service
        of the host's (a hub's API) without it listening on every interface; None without one."""
        network = "podman" if self.is_podman else "bridge"
        done = subprocess.run(
            [self.command, "network", "inspect", "--format", "{{range .IPAM.Config}}{{.Gateway}} {{end}}", network],
            capture_output=True,
            text=True,
        )
        found = done.stdout.split() if done.returncode == 0 else []
        return next((ip for ip in found if ":" not in ip), None)  # the IPv4 gateway

    def build_command(self, args: list[str], context: Path) -> list[str]:
        """``<engine> build ARGS`` with the configured build arguments, on ``context``."""
        return [self.command, "build", *args, *self.build_args, str(context)]

    def build(self, cmd: list[str], what: str, quiet: bool = False) -> None:
        """Run a :meth:`build_command` (of ``what``, for the message) with BuildKit; quiet keeps the
        log and shows it only when the build fails."""
        done = subprocess.run(cmd, env=dict(os.environ, DOCKER_BUILDKIT="1"), text=True, capture_output=quiet)
        if done.returncode:
            if quiet:
                print(done.stderr[-4000:], file=sys.stderr)
            raise LabError(f"building {what} failed (exit {done.returncode})")

    def save(self, tags: list[str], write: Callable[[bytes], object]) -> None:
        """``<engine> save`` of ``tags``, streamed to ``write`` chunk by chunk; the save is stopped
        however this ends."""
        cmd = [self.command, "save", *(["--multi-image-archive"] if self.is_podman else []), *tags]
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
            try:
                assert proc.stdout is not None  # started with stdout=PIPE
                while chunk := proc.stdout.read(CHUNK):
                    write(chunk)
                code = proc.wait()
            except BaseException:
                with signals.deferred():
                    proc.kill()
                    proc.wait()
                raise
            if code:
                err.seek(0)
                why = err.read().decode(errors="replace").strip().splitlines()[-1:] or ["?"]
                raise LabError(f"{self.command} save {' '.join(tags)} failed (exit {code}): {why[0]}")

    def load(self, archive: Path) -> None:
        """``<engine> load`` of an archive that :meth:`save` wrote (compressed or not)."""
        done = subprocess.run([self.command, "load", "-i", str(archive)], capture_output=True, text=True)
        if done.returncode:
            why = (done.stderr.strip().splitlines() or ["?"])[-1]
            raise LabError(f"{self.command} load failed (exit {done.returncode}): {why}")

    # --- containers

    def container_args(self, backend: Backend) -> list[str]:
        """The backend's container flags in this engine's dialect: podman reaches NVIDIA GPUs
        through CDI, not docker's --gpus."""
        args = list(backend.container_args)
        if self.is_podman:
            for i in range(len(args) - 1):
                if tuple(args[i : i + 2]) == GPU_FLAGS:
                    args[i : i + 2] = CDI_GPU_FLAGS
        return args

    def run_command(
        self,
        backend: Backend,
        inner: list[str],
        mounts: Sequence[tuple[Path | str, str]] = (),
        interactive: bool = False,
        name: str | None = None,
        extra: list[str] | None = None,
    ) -> list[str]:
        """``<engine> run --rm`` of ``inner`` in the backend's image, with its container flags. A
        mount's source is a host path, or (a plain name) a named volume."""
        cmd = [self.command, "run", "--rm"]
        if interactive:
            cmd += ["-it"]
        if name:
            cmd += ["--name", name]
        for host, inside in mounts:
            cmd += ["-v", f"{host}:{inside}"]
        return cmd + self.container_args(backend) + self.run_args + (extra or []) + [backend.image] + inner

    def run_attached(self, cmd: list[str], env: dict | None = None) -> int:
        """Run a :meth:`run_command` in the foreground; however this process ends (Ctrl-C, SIGTERM,
        SIGHUP, an error), the container is stopped before it returns. ``cmd`` names the container
        (--name). Should this process be killed outright, the engine's client gets SIGTERM, which
        it passes on to the container's lab (see :func:`processes.with_parent`)."""
        name = cmd[cmd.index("--name") + 1]
        proc = subprocess.Popen(cmd, env=env, preexec_fn=processes.with_parent())
        try:
            return proc.wait()
        except BaseException:
            with signals.deferred():
                self.stop(name)
                proc.wait()
            raise

    def run_script(self, image: str, script: str) -> str:
        """What ``sh -c script`` prints in a throwaway container of ``image`` (its entrypoint aside)."""
        done = subprocess.run(
            [self.command, "run", "--rm", *self.run_args, "--entrypoint", "sh", image, "-c", script],
            capture_output=True,
            text=True,
        )
        return done.stdout

    def stop(self, name: str) -> None:
        """Stop the container ``name`` and remove it (started with --rm, removing is then a no-op)."""
        subprocess.run([self.command, "stop", "-t", "10", name], capture_output=True)
        subprocess.run([self.command, "rm", "-f", name], capture_output=True)

    def exec_in(self, container: str, cmd: list[str], timeout: float = 900) -> subprocess.CompletedProcess:
        """``cmd`` in the running ``container``, as its own user; output captured as text."""
        return subprocess.run([self.command, "exec", container, *cmd], capture_output=True, text=True, timeout=timeout)

    def remove_volume(self, name: str) -> bool:
        """Remove the named volume; False where it stays (a container holds it)."""
        return subprocess.run([self.command, "volume", "rm", "-f", name], capture_output=True).returncode == 0
