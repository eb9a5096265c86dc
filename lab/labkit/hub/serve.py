"""`invoke hub`: JupyterHub for a class, with deploy/jupyterhub_config.py, until Ctrl-C.

Everything is checked before the hub starts: the engine answers, the backend's image is there,
the hub's proxy is installed (npm, from deploy/package-lock.json), and the hub's own folder
(``out/hub``: its database, secrets and the learners' seats) is one the hub made. The passwords
and the hub's API token are made once and kept there, readable by their owner only.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from .. import outdir, paths, processes
from ..backends import get_backend
from ..engine import Engine
from ..errors import LabError, UsageError
from .hub_settings import Settings

DEPLOY = paths.ROOT / "deploy"
CONFIG = DEPLOY / "jupyterhub_config.py"
PROXY = DEPLOY / "node_modules" / ".bin" / "configurable-http-proxy"
STATE = paths.OUT / "hub"
MARKER = ".jaxlab-hub"
# How long a stopping hub may take: it stops each learner's container (JupyterHub's cleanup).
STOP_GRACE = 180.0


def proxy() -> Path:
    """configurable-http-proxy, installed once from the pinned, hashed npm lock."""
    if PROXY.is_file():
        return PROXY
    if not shutil.which("npm"):
        raise UsageError("the hub's proxy (configurable-http-proxy) needs npm once: install Node.js 20 or newer")
    done = subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(DEPLOY)], capture_output=True, text=True
    )
    if done.returncode or not PROXY.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise LabError(f"installing the hub's proxy with npm ci failed: {last}")
    return PROXY


def secret(state: Path, name: str, length: int) -> Path:
    """A secret kept in the hub's folder (made once, owner-readable only)."""
    path = state / name
    if not path.is_file():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(length) + "\n")
    return path


def prepare(engine: Engine, settings: Settings, state: Path = STATE) -> Settings:
    """Check everything the hub needs and make its folder; the settings it then starts with."""
    backend = get_backend(settings.backend)
    folder = outdir.owned_folder(state, MARKER, "--out", "invoke hub", example=" such as out/hub")
    engine.require()
    if engine.image_field(backend.image, "{{.Id}}") is None:
        raise UsageError(f"no image {backend.image}: build it first with invoke build --backend {backend.name}")
    gateway = engine.bridge_gateway()
    if gateway is None and backend.lease != "chip":
        raise LabError(f"{engine.command} has no default network whose gateway the learners' servers could reach")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).touch()
    learners = settings.password_file or str(secret(folder, "learner_password", 9))
    return replace(
        settings,
        image=backend.image,
        state=str(folder),
        proxy=str(proxy()),
        hub_ip=gateway or "127.0.0.1",
        password_file=learners,
        admin_password_file=str(secret(folder, "instructor_password", 30)),
        api_token_file=str(secret(folder, "api_token", 32)),
    )


def serve(settings: Settings) -> int:
    """Run the hub until it stops (Ctrl-C or SIGTERM stop it and what it started)."""
    url = f"http://{settings.bind}:{settings.port}"
    print(
        f"JupyterHub for a class of {settings.learners} on {settings.backend}: {url}\n"
        f"  learners log in with any name and the password in {settings.password_file}\n"
        f"  the instructor logs in as {settings.instructor!r} with the password in "
        f"{settings.admin_password_file}; the class page: {url}/services/class/",
        flush=True,
    )
    proc = start(settings)
    try:
        proc.wait()
    finally:  # Ctrl-C or SIGTERM: the hub stops every learner's container on its way out
        if proc.poll() is None:
            processes.stop(proc, grace=STOP_GRACE)
    return proc.returncode


def start(settings: Settings, **kwargs) -> subprocess.Popen:
    """JupyterHub with the lab's config and ``settings``, in its own folder."""
    env = {**os.environ, **settings.environment()}
    cmd = [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG)]
    return processes.start(cmd, cwd=settings.state, env=env, **kwargs)
