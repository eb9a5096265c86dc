"""Using a bundle on the machine without internet: every file checked against SHA256SUMS first,
then the image loaded into the engine and the wheels installed into this Python, from the bundle
only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import locks, processes
from ..engine import Engine
from ..errors import LabError, UsageError
from .assemble import image_id, pip_env
from .layout import FORMAT, MANIFEST, PROJECT_LOCK, SUMS, say
from .sums import verify


def read_manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise UsageError(f"{folder} is not a bundle of this lab ({MANIFEST} missing or of another format)")
    return manifest


def editable_checkout() -> str | None:
    """Where jaxlab is installed in editable mode in this Python (a checkout), if it is."""
    from importlib import metadata

    try:
        text = metadata.distribution("jaxlab").read_text("direct_url.json")
        info = json.loads(text or "{}")
    except (metadata.PackageNotFoundError, ValueError):
        return None
    return info.get("url") if info.get("dir_info", {}).get("editable") else None


def load(engine: Engine, folder: Path, image: bool = True, install: bool = True, backend: str | None = None) -> None:
    """Check every file of the bundle in ``folder``, then load its image and install its wheels."""
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise UsageError(f"--load {folder}: no such folder; give a bundle's folder (invoke bundle writes one)")
    if image:
        engine.require()
    if install and not locks.host_is_target():
        raise UsageError(
            f"the wheels are for Linux x86_64 CPython {locks.PYTHON}, and this Python is "
            f"{sys.implementation.name} {sys.version_info[0]}.{sys.version_info[1]} on {sys.platform}; "
            f"run invoke with a Python {locks.PYTHON}, or give --no-install"
        )
    say(f"bundle: checking every file of {folder} against {SUMS} ...")
    count = verify(folder)
    manifest = read_manifest(folder)  # checked above, with the rest
    if backend and backend != manifest["backend"]:
        raise UsageError(f"--backend {backend}: {folder} is a bundle of the {manifest['backend']} backend")
    say(f"bundle: {count} files match ({manifest['backend']}, lock {manifest['lock']}, lab {manifest['revision']})")
    if image:
        load_image(engine, folder, manifest)
    if install:
        install_wheels(folder, manifest)
    if not (image or install):
        say("bundle: checked only (--no-image --no-install)")


def load_image(engine: Engine, folder: Path, manifest: dict) -> None:
    say(f"bundle: loading {', '.join(manifest['tags'])} into {engine.command} ...")
    engine.load(folder / "image" / manifest["image_file"])
    for tag in manifest["tags"]:
        if image_id(engine, tag) != manifest["image_id"]:
            raise LabError(f"{tag} is not the bundle's image after {engine.command} load")
    say(f"bundle: loaded {', '.join(manifest['tags'])} ({manifest['image_id'][:19]})")


def install_command(folder: Path, lock_file: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-index",
        "--find-links",
        str(folder / "wheels"),
        "--require-hashes",
        *extra,
        "-r",
        str(folder / "locks" / lock_file),
    ]


def install_wheels(folder: Path, manifest: dict) -> None:
    say(
        f"bundle: installing the wheels of lock {manifest['lock']} into this Python: {sys.prefix} "
        f"({sys.executable}), from {folder / 'wheels'} only"
    )
    steps = [(install_command(folder, f"{manifest['lock']}.txt"), f"lock {manifest['lock']}")]
    if checkout := editable_checkout():
        say(f"bundle: jaxlab is installed here from the checkout {checkout} (editable); kept, not the bundle's wheel")
    else:
        say(f"bundle: installing {manifest['project_wheel']}")
        # The same version number for every revision: replace whatever jaxlab is there.
        steps.append((install_command(folder, PROJECT_LOCK, "--no-deps", "--force-reinstall"), "jaxlab"))
    for cmd, what in steps:
        if code := processes.run(cmd, env=pip_env()):
            raise LabError(
                f"pip could not install {what} from {folder / 'wheels'} (exit {code}); see pip's message above"
            )
    say("bundle: installed")
