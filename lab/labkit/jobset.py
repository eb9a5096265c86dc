"""deploy/jobset.yaml filled in for a backend and a slice: the lab as a Kubernetes JobSet, one pod
per host, each one process of ``invoke lab --processes N --launcher cluster``.

On GKE's TPU node pools JAX finds the other processes itself (GKE sets ``TPU_WORKER_HOSTNAMES``
and ``TPU_WORKER_ID`` in each pod). Elsewhere (NVIDIA GPUs) the pods are told where process 0's
coordinator is: JobSet gives every pod a DNS name, ``<jobset>-<job>-0-0.<jobset>`` for the first.
"""

from __future__ import annotations

import copy

import yaml

from . import paths
from .backends import BACKENDS, get_backend, tpu_slice
from .errors import UsageError

TEMPLATE = paths.ROOT / "deploy" / "jobset.yaml"
COORDINATOR_PORT = 8476  # JAX's own choice on TPU pods


def render(backend: str, image: str, accelerator_type: str = "", hosts: int = 0, gpus_per_host: int = 1) -> dict:
    be = get_backend(backend)
    if not be.kubernetes_resource:
        hosted = " or ".join(b.name for b in BACKENDS.values() if b.kubernetes_resource)
        raise UsageError(f"--backend {backend}: a JobSet runs on GPU or TPU hosts; give {hosted}")
    if not image:
        raise UsageError("give --image: the lab's image as your cluster pulls it, e.g. REGISTRY/jaxlab:tpu")
    manifest = yaml.safe_load(TEMPLATE.read_text())
    name = manifest["metadata"]["name"]
    job = manifest["spec"]["replicatedJobs"][0]
    pod = job["template"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    if be.lease == "chip":  # leased by the chip: a TPU slice, whose generation says its hosts
        if not accelerator_type:
            raise UsageError(f"--backend {be.name}: give --accelerator-type, e.g. v5litepod-16")
        generation, hosts = tpu_slice(accelerator_type)
        if not generation.gke_accelerator:
            raise UsageError(f"{accelerator_type}: GKE has no node pools of {generation.prefix}")
        count = int(accelerator_type.partition("-")[2])
        pod["nodeSelector"] = {
            "cloud.google.com/gke-tpu-accelerator": generation.gke_accelerator,
            "cloud.google.com/gke-tpu-topology": generation.topology(count),
        }
        chips_here = min(generation.chips(count), generation.chips_per_host)
        container["resources"]["limits"] = {be.kubernetes_resource: str(chips_here)}
        # libtpu needs the host's devices; GKE's TPU pods run privileged for that.
        container["securityContext"] = {"privileged": True}
    else:
        if hosts < 1 or gpus_per_host < 1:
            raise UsageError(f"--backend {be.name}: give --hosts and --gpus-per-host, 1 or more each")
        container["resources"]["limits"] = {be.kubernetes_resource: str(gpus_per_host)}
        container["env"] += [
            {"name": "JAXLAB_COORDINATOR", "value": f"{name}-{job['name']}-0-0.{name}:{COORDINATOR_PORT}"},
            {"name": "JAXLAB_PROCESS_COUNT", "value": str(hosts)},
        ]
    job["template"]["spec"]["parallelism"] = job["template"]["spec"]["completions"] = hosts
    container["image"] = image
    container["command"] = [
        "invoke",
        "lab",
        "--runtime",
        "local",
        "--backend",
        be.name,
        "--processes",
        str(hosts),
        "--launcher",
        "cluster",
    ]
    return copy.deepcopy(manifest)


def dump(manifest: dict) -> str:
    return yaml.safe_dump(manifest, sort_keys=False)
