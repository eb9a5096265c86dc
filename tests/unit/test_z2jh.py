"""deploy/z2jh-values.yaml: every profile's pod, rendered by KubeSpawner offline, is a lab pod on
the right image and device, never root, with the learner's own volume."""

from __future__ import annotations

import pytest
from helpers import run_async
from traitlets.config import Config

from labkit.hub import z2jh

PROFILES = {p["slug"]: p for p in z2jh.values()["singleuser"]["profileList"]}


# KubeSpawner reads a cluster's address when it is made; rendering a pod never contacts it.
OFFLINE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: none}}]
contexts: [{name: none, context: {cluster: none, user: none, namespace: jaxlab}}]
current-context: none
"""


@pytest.fixture(autouse=True)
def offline_cluster(tmp_path, monkeypatch):
    from kubernetes_asyncio.config import kube_config

    (tmp_path / "kubeconfig").write_text(OFFLINE_KUBECONFIG)
    # The client reads $KUBECONFIG when it is imported; this is where it looks from then on.
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


def pod(slug: str):
    # Imported here, not at collection: it takes seconds, in every test process.
    kubespawner = pytest.importorskip("kubespawner", reason="the dev extra brings KubeSpawner")

    async def render():  # KubeSpawner makes its API client in a running event loop
        config = Config({"KubeSpawner": z2jh.spawner_settings(z2jh.values())})
        spawner = kubespawner.KubeSpawner(config=config, _mock=True)
        spawner.user_options = {"profile": slug}
        await spawner.load_user_options()
        return await spawner.get_pod_manifest()

    return run_async(render)


@pytest.mark.parametrize(
    "slug, image, device",
    [
        ("cpu", "jaxlab:cpu", None),
        ("cuda", "jaxlab:cuda", "nvidia.com/gpu"),
        ("cuda-mig", "jaxlab:cuda", "nvidia.com/mig-1g.10gb"),
        ("tpu", "jaxlab:tpu", "google.com/tpu"),
    ],
)
def test_each_profile_renders_a_lab_pod_with_its_device(slug, image, device):
    manifest = pod(slug)
    (container,) = manifest.spec.containers
    assert container.image == image
    limits = container.resources.limits or {}
    devices = {k for k in limits if "/" in k}
    assert devices == ({device} if device else set()) and (not device or limits[device] == "1")
    assert (
        container.security_context["runAsUser"] == 1000 and not container.security_context["allowPrivilegeEscalation"]
    )
    assert manifest.spec.security_context["fsGroup"] == 1000
    assert container.args[:4] == ["python3", "-m", "labkit.workspace", "jupyterhub-singleuser"]
    assert [m.mount_path for m in container.volume_mounts if m.name.startswith("volume-")] == ["/home/lab/work"]
    assert limits["memory"] and container.resources.requests["memory"]
    if slug == "tpu":  # GKE schedules a TPU pod only on a node of the asked-for accelerator
        selector = manifest.spec.node_selector
        assert selector["cloud.google.com/gke-tpu-accelerator"] == "tpu-v5-lite-podslice"
    if device and device.startswith("nvidia"):
        env = {e.name: e.value for e in container.env}
        assert env["INVOKE_JAXLAB_BACKEND"] == "cuda" and env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"


def test_the_chart_pre_pulls_the_images_and_culls_idle_servers():
    chart = z2jh.values()
    assert chart["prePuller"]["hook"]["enabled"] and chart["prePuller"]["continuous"]["enabled"]
    assert chart["cull"]["enabled"] and 0 < chart["cull"]["timeout"] <= chart["cull"]["maxAge"]
    assert set(PROFILES) == {"cpu", "cuda", "cuda-mig", "tpu"}
