"""``invoke pod --dry-run``: the commands that run the lab on a Cloud TPU pod slice, in Cloud TPU's
documented form, with each generation's runtime version and one process per host."""

from __future__ import annotations

import shlex

import pytest
from helpers import invoke, one_line_error

# Cloud TPU's documented command forms (cloud.google.com/tpu/docs/managing-tpus-tpu-vm,
# .../tpu/docs/jax-pods): the positional arguments, then the flags each form takes.
DOCUMENTED = {
    "create": {"positional": 1, "flags": {"--zone", "--accelerator-type", "--version"}},
    "ssh": {"positional": 1, "flags": {"--zone", "--worker", "--command"}},
    "scp": {"positional": 2, "flags": {"--zone", "--worker", "--recurse"}},
}
# Cloud TPU's table of software versions, per generation (cloud.google.com/tpu/docs/runtimes)
RUNTIME = {"v4-32": "tpu-ubuntu2204-base", "v5litepod-16": "v2-alpha-tpuv5-lite"}
# Hosts per slice, from each generation's page: v4-32 is 16 chips (2x2x4) on 4 hosts, v5litepod-16 is
# 16 chips (4x4) on 2 hosts.
HOSTS = {"v4-32": 4, "v5litepod-16": 2}


def dry_run(accelerator_type: str, *extra: str) -> list[list[str]]:
    result = invoke(
        "pod",
        "--tpu-name",
        "lab",
        "--zone",
        "us-central2-b",
        "--accelerator-type",
        accelerator_type,
        "--dry-run",
        *extra,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return [shlex.split(line) for line in result.stdout.splitlines() if line and not line.startswith("#")]


def parse(argv: list[str]) -> tuple[str, list[str], dict[str, str]]:
    assert argv[:4] == ["gcloud", "compute", "tpus", "tpu-vm"], argv
    verb, rest = argv[4], argv[5:]
    positional = [a for a in rest if not a.startswith("--")]
    flags = dict((a[2:].split("=", 1) + [""])[:2] for a in rest if a.startswith("--"))
    form = DOCUMENTED[verb]
    assert len(positional) == form["positional"], argv
    assert {f"--{f}" for f in flags} <= form["flags"], f"{verb}: flags outside its documented form: {argv}"
    return verb, positional, {f: v for f, v in flags.items()}


@pytest.mark.parametrize("accelerator_type", ["v4-32", "v5litepod-16"])
def test_the_dry_run_is_cloud_tpu_s_documented_form(accelerator_type):
    commands = [parse(argv) for argv in dry_run(accelerator_type, "--create")]
    verbs = [verb for verb, _, _ in commands]
    hosts = HOSTS[accelerator_type]
    assert verbs == ["create", "scp", "ssh", "ssh", *["scp"] * hosts], verbs
    _, positional, create = commands[0]
    assert positional == ["lab"]
    assert create == {
        "zone": "us-central2-b",
        "accelerator-type": accelerator_type,
        "version": RUNTIME[accelerator_type],
    }
    for verb, _, flags in commands[1:4]:  # to every host at once
        assert flags["worker"] == "all" and flags["zone"] == "us-central2-b", (verb, flags)
    _, _, run = commands[3]
    lab = shlex.split(run["command"].split(" && ")[-1])
    assert lab[:3] == ["sudo", "docker", "run"] and "jaxlab:tpu" in lab
    assert lab[lab.index("--processes") + 1] == str(hosts) and lab[lab.index("--launcher") + 1] == "cluster"
    gathered = [(positional, flags["worker"]) for _, positional, flags in commands[4:]]
    assert [worker for _, worker in gathered] == [str(i) for i in range(hosts)]
    assert len({dest for (_, dest), _ in gathered}) == hosts, "each host's results need a folder of their own"


def test_without_create_the_slice_is_taken_as_it_is():
    assert [argv[4] for argv in dry_run("v4-32")][:1] == ["scp"]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--tpu-name", "lab", "--zone", "z", "--accelerator-type", "v9-8"], "unknown accelerator type 'v9-8'"),
        (["--tpu-name", "lab", "--zone", "z", "--accelerator-type", "v4"], "unknown accelerator type 'v4'"),
        (["--tpu-name", "lab", "--accelerator-type", "v4-32"], "give --tpu-name and --zone"),
    ],
)
def test_a_slice_the_lab_cannot_name_is_refused_in_one_line(args, says):
    result = invoke("pod", "--dry-run", *args, timeout=60)
    assert says in one_line_error(result)
