"""JupyterLab for a learner, in the backend's image: published on 127.0.0.1 only, with a token,
on a workspace folder of the host's that survives the container."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from . import outdir, paths
from .backends import get_backend
from .engine import Engine
from .errors import LabError, UsageError
from .images import ensure_image
from .lab_in_container import cache_mount, check_backend, container_name, image_user, out_mount

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
    args = engine.container_args(backend) + engine.run_args
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
        cmd = engine.run_command(
            backend, inner, [*out_mount(), (work, workspace.IMAGE_WORK), cache_mount()], name=name, extra=extra + user
        )
        watcher.start()
        code = engine.run_attached(cmd, env=dict(os.environ, JUPYTER_TOKEN=token))
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
