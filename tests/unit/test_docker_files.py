"""docker/, compose.yaml and the lock files agree with the backend registry and the pins."""

from __future__ import annotations

import re

import pytest
import yaml

from labkit import BACKENDS, images, paths, workspace

DOCKERFILE = (paths.ROOT / "docker" / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((paths.ROOT / "compose.yaml").read_text())


def stage_env(name: str) -> str:
    """The ENV text of the Dockerfile stage ``env-<name>``."""
    match = re.search(rf"^FROM base AS env-{name}\n(.*?)(?=^FROM )", DOCKERFILE, re.M | re.S)
    assert match, f"docker/Dockerfile has no stage env-{name}"
    return match.group(1)


def test_dockerfile_has_a_stage_for_every_backend_and_no_other():
    stages = re.findall(r"^FROM base AS env-(\w+)$", DOCKERFILE, re.M)
    assert sorted(stages) == sorted(BACKENDS)


@pytest.mark.parametrize("name", list(BACKENDS))
def test_stage_environment_matches_the_registry(name):
    backend = BACKENDS[name]
    env = stage_env(name)
    assert f"JAX_PLATFORMS={backend.jax_platforms_value}" in env
    for key, value in backend.env.items():
        assert f"{key}={value}" in env


def test_compose_has_one_service_per_backend_under_its_profile():
    services = COMPOSE["services"]
    assert sorted(services) == sorted(b.service for b in BACKENDS.values())
    for backend in BACKENDS.values():
        service = services[backend.service]
        assert service["profiles"] == [backend.name]
        assert service["image"] == backend.image
        assert service["build"]["args"]["BACKEND"] == backend.name
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert "JUPYTER_TOKEN" in service["environment"]
        # Never as root: the default user is the image's (a host folder is the user's choice).
        assert service["user"] == f"${{JAXLAB_UID:-{images.IMAGE_UID}}}:${{JAXLAB_GID:-{images.IMAGE_UID}}}"


@pytest.mark.parametrize("name", list(BACKENDS))
def test_compose_service_gets_what_the_registry_says_the_container_needs(name):
    backend, service = BACKENDS[name], COMPOSE["services"][BACKENDS[name].service]
    args = " ".join(backend.container_args)
    if "--gpus" in args:
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    if "--privileged" in args:
        assert service["privileged"] is True
    if "--net=host" in args:
        assert service["network_mode"] == "host" and "ports" not in service
        assert "--ip=127.0.0.1" in service["command"]
    if "--shm-size" in args:
        assert service["shm_size"]
    for port in service.get("ports", []):
        assert port.startswith("127.0.0.1:"), f"{backend.service} publishes {port} beyond loopback"


def test_the_images_paths_are_the_ones_the_host_side_uses():
    assert f"ENV JAXLAB_ROOT={images.IMAGE_ROOT}\n" in DOCKERFILE
    assert f"ENV JAXLAB_WORK={workspace.IMAGE_WORK}\n" in DOCKERFILE
    assert f"--ServerApp.root_dir={workspace.IMAGE_WORK}" in DOCKERFILE
    for service in COMPOSE["services"].values():
        # The named volume by default: the engine creates it with the image's owner, where a missing
        # host folder would be created as root and be unwritable for the learner.
        # The compilation cache: the named volume that invoke lab --runtime docker keeps too.
        cache = f"compile-cache:{images.CACHE_MOUNT}"
        assert service["volumes"] == [f"${{JAXLAB_WORK:-work}}:{workspace.IMAGE_WORK}", cache]
        command = " ".join(service.get("command", []))
        assert not command or "labkit.workspace jupyter lab" in command and workspace.IMAGE_WORK in command
    assert "work" in COMPOSE["volumes"]
    assert COMPOSE["volumes"]["compile-cache"]["name"] == images.CACHE_VOLUME
    assert f"ENV JAXLAB_CACHE_DIR={images.CACHE_MOUNT}\n" in DOCKERFILE


def test_an_organisers_extra_packages_go_into_the_build_pinned(monkeypatch):
    from labkit import images
    from labkit.backends import get_backend
    from labkit.engine import Engine

    monkeypatch.setenv(images.EXTRAS_VARIABLE, "pooch==1.8.2  Scipy-Extra[all]==0.1")
    command = images.build_command(Engine("docker"), get_backend("cpu"))
    assert "EXTRA_PACKAGES=pooch==1.8.2 Scipy-Extra[all]==0.1" in command
    monkeypatch.setenv(images.EXTRAS_VARIABLE, "")
    assert not [arg for arg in images.build_command(Engine("docker"), get_backend("cpu")) if "EXTRA" in arg]


@pytest.mark.parametrize("unpinned", ["pooch", "pooch>=1.8", "pooch==", "https://example.org/x.whl"])
def test_an_extra_package_that_is_not_pinned_is_refused(monkeypatch, unpinned):
    from labkit import images
    from labkit.errors import UsageError

    monkeypatch.setenv(images.EXTRAS_VARIABLE, f"pooch==1.8.2 {unpinned}")
    with pytest.raises(UsageError, match=f"JAXLAB_EXTRA_PACKAGES: {unpinned!r} is not pinned"):
        images.extra_packages()
