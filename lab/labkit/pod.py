"""The lab on a Cloud TPU pod slice: every host of the slice runs one process of the lab in
``jaxlab:tpu``, started by ``gcloud compute tpus tpu-vm ssh --worker=all``, and the results of
each host are copied back. JAX finds the other hosts itself (from the TPU VM's metadata).

    invoke pod --tpu-name NAME --zone ZONE --accelerator-type v4-32 [--create] [--dry-run]

The commands are Cloud TPU's documented forms (``gcloud compute tpus tpu-vm create|scp|ssh``);
``--dry-run`` prints them and runs nothing. The runtime version a slice is created with comes from
the registry (labkit.backends.TPU_GENERATIONS).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from .backends import get_backend, tpu_slice
from .errors import UsageError
from .images import IMAGE_ROOT

GCLOUD = ("gcloud", "compute", "tpus", "tpu-vm")
ARCHIVE = "jaxlab-tpu.tar.gz"  # the image, as each host loads it
REMOTE_OUT = "jaxlab-out"  # each host's results, under its user's home
# Which host this is, from the TPU VM's metadata (the same attribute JAX reads to find its place).
WORKER_NUMBER = (
    "$(curl -s -H Metadata-Flavor:Google "
    "http://metadata.google.internal/computeMetadata/v1/instance/attributes/agent-worker-number)"
)


@dataclass(frozen=True)
class Step:
    what: str
    argv: list[str]

    @property
    def line(self) -> str:
        return shlex.join(self.argv)


def steps(name: str, zone: str, accelerator_type: str, create: bool, out: Path, image_archive: Path) -> list[Step]:
    """The commands that run the lab on every host of the slice ``name`` and gather the results."""
    if not name or not zone:
        raise UsageError("give --tpu-name and --zone: the slice's name and the zone it is in")
    generation, hosts = tpu_slice(accelerator_type)
    tpu = get_backend("tpu")
    zone_flag = [f"--zone={zone}"]
    plan: list[Step] = []
    if create:
        plan.append(
            Step(
                f"create the slice ({hosts} hosts) with {generation.prefix}'s runtime version",
                [
                    *GCLOUD,
                    "create",
                    name,
                    *zone_flag,
                    f"--accelerator-type={accelerator_type}",
                    f"--version={generation.runtime_version}",
                ],
            )
        )
    lab = [
        "sudo docker run --rm",
        *tpu.container_args,
        f"-e JAXLAB_PROCESS_ID={WORKER_NUMBER}",
        f"-v $HOME/{REMOTE_OUT}:{IMAGE_ROOT}/out",
        tpu.image,
        f"invoke lab --runtime local --backend tpu --processes {hosts} --launcher cluster --out out/pod",
    ]
    plan += [
        Step(
            "copy the image to every host",
            [*GCLOUD, "scp", str(image_archive), f"{name}:{ARCHIVE}", *zone_flag, "--worker=all"],
        ),
        Step(
            "load it on every host",
            [*GCLOUD, "ssh", name, *zone_flag, "--worker=all", f"--command=sudo docker load -i {ARCHIVE}"],
        ),
        Step(
            f"run the lab, one process per host ({hosts})",
            [
                *GCLOUD,
                "ssh",
                name,
                *zone_flag,
                "--worker=all",
                # the image's user writes the results: the folder is made writable for it first
                f"--command=mkdir -p $HOME/{REMOTE_OUT} && chmod 777 $HOME/{REMOTE_OUT} && {' '.join(lab)}",
            ],
        ),
    ]
    plan += [
        Step(
            f"gather host {i}'s results",
            [*GCLOUD, "scp", "--recurse", f"{name}:{REMOTE_OUT}/pod", str(out / f"host-{i}"), *zone_flag]
            + [f"--worker={i}"],
        )
        for i in range(hosts)
    ]
    return plan


MARKER = ".jaxlab-pod"  # a folder invoke pod wrote (labkit.outdir's one rule for writers)


def run(name: str, zone: str, accelerator_type: str, create: bool, out: Path, engine) -> None:
    """Save the image, run every step in turn, and stop at the first that fails, naming it."""
    import shutil

    from . import outdir, processes

    folder = outdir.owned_folder(out, MARKER, "--out", "invoke pod", example=" such as out/pod/<name>")
    archive = folder / ARCHIVE
    plan = steps(name, zone, accelerator_type, create, folder, archive)  # checked before anything is written
    if not shutil.which("gcloud"):
        raise UsageError("invoke pod needs the Google Cloud CLI (gcloud) on PATH; --dry-run prints the commands")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).touch()
    with archive.open("wb") as fh:
        engine.save([get_backend("tpu").image], fh.write)
    for step in plan:
        print(f"+ {step.line}", flush=True)
        if code := processes.run(step.argv):
            raise UsageError(f"invoke pod stopped: {step.what} failed (exit {code}): {step.line}")
