"""The images' lock files (docker/locks/) agree with the pins in pyproject.toml.

Each lock's header records the digest of the pins it was made from and the cut-off date it was
resolved with (only packages uploaded before it), so ``invoke lock`` gives the same files until
the date is moved on purpose. The tests check only what this project controls: the header matches
today's pins, every line is hashed, the direct pins are locked at their versions, and the lock
resolved again from itself for the images' platform is complete, each hash a real file's (marked
``index``: that asks the package index about fixed versions, which no later release changes; the
images' builds then install the locks with pip). They do not regenerate the locks from the pins: a
mirror that learns late of a release from before the cut-off would change that answer, and no
change of ours would have caused it.
"""

from __future__ import annotations

import re

import pytest

from labkit import BACKENDS, locks, pins

NAMES = locks.lock_names()
# The distribution that brings each lock's JAX plugin, as the backend registry names it.
PLUGINS = {lock: b.plugin_packages.get(lock) for b in BACKENDS.values() for lock in b.locks}


def text(name: str) -> str:
    return (locks.LOCKS / f"{name}.txt").read_text()


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
    requirements = [e for e in locks.entries(text(name)) if not e.startswith("#")]
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
        assert locked.get(pins.normal(match["name"])) == want, (
            f"docker/locks/{name}.txt has {match['name']}=={locked.get(pins.normal(match['name']))}, "
            f"pyproject.toml pins {want}: run `invoke lock`"
        )


@pytest.mark.index
@pytest.mark.parametrize("name", NAMES)
def test_lock_is_complete_for_the_images_and_each_hash_is_a_real_file(name):
    """What pip's --require-hashes install in the image needs, asked of the index: every dependency
    for Linux x86_64 and CPython 3.11 locked, each with hashes of its real files; and the plugin."""
    assert locks.problems(locks.LOCKS / f"{name}.txt") == [], f"docker/locks/{name}.txt: run `invoke lock`"
    if plugin := PLUGINS[name]:
        assert plugin in locks.locked(text(name)), f"{name} lock lacks {plugin}"


@pytest.mark.index
def test_a_missing_dependency_and_a_wrong_hash_are_named(tmp_path):
    lock = text("cpu")
    jaxlib = re.search(r"^jaxlib==\S+ \\\n(?:\s+--hash=sha256:[0-9a-f]+(?: \\)?\n)+", lock, re.M)
    assert jaxlib, "the cpu lock has no jaxlib entry"
    # jax needs opt-einsum; and one of jaxlib's hashes changed by a digit.
    (tmp_path / "cpu.txt").write_text(
        re.sub(r"^opt-einsum==.*?(?=^\S)", "", lock, flags=re.M | re.S).replace(
            jaxlib[0], re.sub(r"sha256:(.)", lambda m: "sha256:" + "01"[m[1] == "0"], jaxlib[0], count=1)
        )
    )
    found = locks.problems(tmp_path / "cpu.txt")
    assert found[0] == "opt-einsum is needed but not locked" and len(found) == 2, found
    assert found[1].startswith(f"jaxlib=={pins.version('jax')} allows a hash that no file of it has: "), found
