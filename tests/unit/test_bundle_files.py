"""`invoke bundle --load` checks only the bundle's own files: a listed file that is, or lies
behind, a symbolic link is refused in one line, however right its checksum, before anything is
loaded or installed (no engine is needed to check: --no-image --no-install)."""

from __future__ import annotations

import json

import pytest
from helpers import invoke

from labkit import bundle


def small_bundle(folder, outside):
    """A bundle-shaped folder: a manifest, a wheel, a handout, and their checksums."""
    (folder / "wheels").mkdir(parents=True)
    (folder / "handouts").mkdir()
    (folder / bundle.MANIFEST).write_text(
        json.dumps({"format": bundle.FORMAT, "backend": "cpu", "lock": "cpu", "revision": "abc"})
    )
    (folder / "wheels" / "pkg-1.0-py3-none-any.whl").write_bytes(b"wheel")
    (folder / "handouts" / "01.ipynb").write_text("{}")
    outside.mkdir()
    return folder


def test_a_plain_bundle_checks(tmp_path):
    folder = small_bundle(tmp_path / "kit", tmp_path / "elsewhere")
    bundle.write_sums(folder)
    done = invoke("bundle", "--load", str(folder), "--no-image", "--no-install")
    assert done.returncode == 0 and "3 files match" in done.stdout, done.stderr


@pytest.mark.parametrize("link", ["file", "folder"])
def test_a_listed_file_behind_a_link_is_refused_though_its_checksum_matches(tmp_path, link):
    folder = small_bundle(tmp_path / "kit", tmp_path / "elsewhere")
    elsewhere = tmp_path / "elsewhere"
    bundle.write_sums(folder)  # the same bytes are behind the link: every checksum matches
    if link == "file":
        wheel = folder / "wheels" / "pkg-1.0-py3-none-any.whl"
        (elsewhere / wheel.name).write_bytes(wheel.read_bytes())
        wheel.unlink()
        wheel.symlink_to(elsewhere / wheel.name)
        name = "wheels/pkg-1.0-py3-none-any.whl"
    else:
        (folder / "handouts" / "01.ipynb").rename(elsewhere / "01.ipynb")
        (folder / "handouts").rmdir()
        (folder / "handouts").symlink_to(elsewhere)
        name = "handouts/01.ipynb"
    assert name in (folder / bundle.SUMS).read_text() and bundle.sha256(folder / name)
    done = invoke("bundle", "--load", str(folder), "--no-image", "--no-install")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert f"{name} is or lies behind a symbolic link" in lines[0]
