"""``invoke jobset``: deploy/jobset.yaml filled in for a TPU slice or GPU hosts, checked offline
(no cluster is reachable here): the JobSet's shape, one process per host, and a pod template that
Kubernetes' own models read back unchanged (a misspelt or misplaced field would be dropped)."""

from __future__ import annotations

import json
import shlex

import pytest
import yaml
from helpers import invoke, one_line_error, run_async


def rendered(*args: str) -> dict:
    result = invoke("jobset", "--image", "registry.example/jaxlab:x", *args, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return yaml.safe_load(result.stdout)


class _Response:  # what kubernetes' ApiClient.deserialize reads
    def __init__(self, data: dict):
        self.data = json.dumps(data)


def read_back_by_kubernetes(job_template: dict) -> dict:
    from kubernetes_asyncio.client import ApiClient

    async def round_trip() -> dict:
        async with ApiClient() as api:
            return api.sanitize_for_serialization(api.deserialize(_Response(job_template), "V1JobTemplateSpec"))

    return run_async(round_trip)


def check_jobset(manifest: dict, hosts: int, backend: str) -> dict:
    assert manifest["apiVersion"] == "jobset.x-k8s.io/v1alpha2" and manifest["kind"] == "JobSet"
    assert manifest["spec"]["failurePolicy"]["maxRestarts"] == 0
    (job,) = manifest["spec"]["replicatedJobs"]
    spec = job["template"]["spec"]
    assert spec["parallelism"] == spec["completions"] == hosts and spec["completionMode"] == "Indexed"
    assert spec["backoffLimit"] == 0
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    command = shlex.join(container["command"])
    assert f"--backend {backend} --processes {hosts} --launcher cluster" in command, command
    env = {e["name"]: e for e in container["env"]}
    assert "job-completion-index" in env["JAXLAB_PROCESS_ID"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert read_back_by_kubernetes(job["template"]) == job["template"]
    return {"pod": pod, "container": container, "env": env, "name": manifest["metadata"]["name"], "job": job["name"]}


@pytest.mark.parametrize(
    ("accelerator_type", "hosts", "topology", "chips"),
    [("v5litepod-16", 2, "4x4", "8"), ("v4-32", 4, "2x2x4", "4")],
)
def test_a_tpu_slice_s_jobset_has_a_pod_per_host_on_its_node_pool(accelerator_type, hosts, topology, chips):
    parts = check_jobset(rendered("--backend", "tpu", "--accelerator-type", accelerator_type), hosts, "tpu")
    assert parts["pod"]["nodeSelector"]["cloud.google.com/gke-tpu-topology"] == topology
    assert parts["container"]["resources"]["limits"] == {"google.com/tpu": chips}
    assert "JAXLAB_COORDINATOR" not in parts["env"], "on GKE's TPU pods JAX finds the other hosts itself"


def test_gpu_hosts_are_told_where_process_0_s_coordinator_is():
    parts = check_jobset(rendered("--backend", "cuda", "--hosts", "3", "--gpus-per-host", "8"), 3, "cuda")
    assert parts["container"]["resources"]["limits"] == {"nvidia.com/gpu": "8"}
    first_pod = f"{parts['name']}-{parts['job']}-0-0.{parts['name']}"  # JobSet's DNS name for pod 0
    assert parts["env"]["JAXLAB_COORDINATOR"]["value"].split(":")[0] == first_pod
    assert parts["env"]["JAXLAB_PROCESS_COUNT"]["value"] == "3"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--backend", "cpu"], "a JobSet runs on GPU or TPU hosts"),
        (["--backend", "tpu"], "give --accelerator-type"),
        (["--backend", "tpu", "--accelerator-type", "v3-32"], "GKE has no node pools of v3"),
        (["--backend", "cuda"], "give --hosts and --gpus-per-host"),
    ],
)
def test_what_a_jobset_cannot_run_is_refused_in_one_line(args, says):
    assert says in one_line_error(invoke("jobset", "--image", "r/jaxlab:x", *args, timeout=60))
