"""The images' lock files (docker/locks/) agree with the pins in pyproject.toml.

Each lock's header records the digest of the pins it was made from and the cut-off date it was
resolved with (only packages uploaded before it), so ``invoke lock`` gives the same files until
the date is moved on purpose. The tests check only what this project controls: the header matches
today's pins, every line is hashed, the direct pins are locked at their versions, and pip installs
the lock complete with hashes checked (marked ``index``: that asks the package index, for files of
fixed versions and hashes, which no later release changes). They do not regenerate the locks: a
mirror that learns late of a release from before the cut-off would change that answer, and no
change of ours would have caused it.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor

import pytest

from labkit import BACKENDS, locks, pins

NAMES = locks.lock_names()
# The distribution that brings each lock's JAX plugin, as the backend registry names it.
PLUGINS = {lock: b.plugin_packages.get(lock) for b in BACKENDS.values() for lock in b.locks}


def text(name: str) -> str:
    return (locks.LOCKS / f"{name}.txt").read_text()


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.mark.parametrize("name", NAMES)
def test_lock_header_records_the_current_pins(name):
    lock = text(name)
    assert lock.startswith(locks.HEADER), f"docker/locks/{name}.txt lacks its header: run `invoke lock`"
    recorded = locks.header(name, lock)["digest"]
    assert recorded == locks.pins_digest(name), (
        f"docker/locks/{name}.txt was made from other pins than pyproject.toml's: run `invoke lock`"
    )


def test_all_locks_record_one_cutoff():
    cutoffs = {name: locks.header(name)["cutoff"] for name in NAMES}
    assert None not in cutoffs.values(), f"a lock records no cut-off: {cutoffs}"
    assert len(set(cutoffs.values())) == 1, f"the locks record different cut-offs: {cutoffs}"
    (cutoff,) = set(cutoffs.values())
    assert locks.parse_cutoff(cutoff) == cutoff, f"cut-off {cutoff!r} is not a past UTC time in the header's form"


@pytest.mark.parametrize("name", NAMES)
def test_every_locked_requirement_has_a_hash(name):
    entries = re.split(r"\n(?=[^\s#])", text(name))  # one entry per requirement, with its continuation lines
    requirements = [e for e in entries if not e.startswith("#")]
    assert requirements, f"docker/locks/{name}.txt locks nothing"
    unhashed = [e.splitlines()[0] for e in requirements if "--hash=sha256:" not in e]
    assert not unhashed, f"docker/locks/{name}.txt has requirements without a hash: {unhashed}"
    assert len(locks.locked(text(name))) == len(requirements), "a requirement is not pinned as name==version"


@pytest.mark.parametrize("name", NAMES)
def test_lock_pins_the_direct_requirements_at_their_pinned_versions(name):
    locked = locks.locked(text(name))
    jax = pins.version("jax")
    assert locked.get("jax") == locked.get("jaxlib") == jax, f"{name}: jax/jaxlib are not at the pinned {jax}"
    for req in locks.pins(name):
        match = pins.PIN.match(req.replace(" ", ""))
        assert match, f"{req!r} is not pinned with =="
        want = pins.version(match["name"])
        assert locked.get(normal(match["name"])) == want, (
            f"docker/locks/{name}.txt has {match['name']}=={locked.get(normal(match['name']))}, "
            f"pyproject.toml pins {want}: run `invoke lock`"
        )


@pytest.fixture(scope="module")
def dry_runs(tmp_path_factory):
    """pip's dry run of every lock, all started at once: each mostly waits on the package index,
    so together they take about as long as the largest alone."""
    with ThreadPoolExecutor(len(NAMES)) as pool:
        yield {
            name: pool.submit(locks.dry_run, name, tmp_path_factory.mktemp(name), locks.host_is_target())
            for name in NAMES
        }


@pytest.mark.index
@pytest.mark.parametrize("name", NAMES)
def test_lock_installs_jax_and_its_plugin_with_hashes_checked(dry_runs, name):
    """pip installs the lock on the images' platform with --require-hashes. Where this Python is
    the images' (Linux x86_64, CPython 3.11) pip also resolves every locked package's dependencies,
    which it refuses unless the lock pins each with a hash: the lock is complete."""
    report = dry_runs[name].result()
    installed = {normal(item["metadata"]["name"]): item["metadata"]["version"] for item in report["install"]}
    jax = pins.version("jax")
    assert installed.get("jax") == installed.get("jaxlib") == jax, installed
    if plugin := PLUGINS[name]:
        assert plugin in installed, f"{name} lock lacks {plugin}"
    if not locks.host_is_target():
        pytest.skip("installs checked without dependencies: pip evaluates markers for this Python, not 3.11 on Linux")
