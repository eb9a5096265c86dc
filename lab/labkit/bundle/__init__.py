"""An offline kit for a room without internet: one folder with everything a backend needs.

``invoke bundle --backend cpu`` writes (default ``out/bundle-cpu``)::

    bundle.json          what this is: backend, lock, image tags and id, JAX version, revision
    README.txt           what is inside and the commands that use it
    SHA256SUMS           a checksum of every other file (``sha256sum -c SHA256SUMS`` reads it too)
    image/jaxlab-cpu.tar.gz     ``docker save`` of jaxlab:cpu and jaxlab:cpu-jax<version>, gzip -1
    locks/cpu.txt        the hashed lock the image was built from
    locks/jaxlab.txt     this project's wheel, pinned by its hash
    wheels/              every wheel of the lock for Linux x86_64 / CPython 3.11, and jaxlab's own
    handouts/            the learner notebooks

``invoke bundle --load DIR`` on the machine without internet checks every file against SHA256SUMS
before it touches anything, then loads the image and installs the wheels into the Python that runs
it, from that folder only (``pip install --no-index --require-hashes``).

A bundle only ever replaces a bundle: it is assembled in a staging folder beside its destination
and moved into place once complete, so Ctrl-C leaves no half-written bundle, and a folder of the
user's is refused before anything starts.

The package: ``layout`` (the names and the folder's rules), ``sums`` (SHA256SUMS), ``assemble``
(making a bundle) and ``install`` (checking and loading one).
"""

from __future__ import annotations

from .assemble import image_id, make, pip_env
from .install import load
from .layout import (
    FORMAT,
    MANIFEST,
    PARTIAL,
    PROJECT_LOCK,
    README,
    SUMS,
    check_target,
    default_out,
    folder_size,
    is_bundle,
)
from .sums import sha256, verify, write_sums

__all__ = [
    "FORMAT",
    "MANIFEST",
    "SUMS",
    "README",
    "PARTIAL",
    "PROJECT_LOCK",
    "check_target",
    "default_out",
    "folder_size",
    "image_id",
    "is_bundle",
    "load",
    "make",
    "pip_env",
    "sha256",
    "verify",
    "write_sums",
]
