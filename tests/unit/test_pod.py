"""``invoke pod --dry-run``: the commands that run the lab on a Cloud TPU pod slice, in Cloud TPU's
documented form, with each generation's runtime version and one process per host."""

from __future__ import annotations

import re
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


def readme_tpu_vm_block() -> list[str]:
    from labkit import paths

    text = (paths.ROOT / "README.md").read_text()
    section = text.split("### On a Cloud TPU VM", 1)[1].split("\n### ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]


def test_the_readmes_tpu_vm_is_created_with_its_generation_s_runtime_version():
    from labkit.backends import tpu_slice

    (create,) = [shlex.split(line) for line in readme_tpu_vm_block() if " tpu-vm create " in line]
    _, _, flags = parse(create)
    generation, _ = tpu_slice(flags["accelerator-type"])
    assert flags["version"] == generation.runtime_version


def test_the_readmes_tpu_vm_runs_the_lab_in_the_image_and_installs_no_python_on_the_vm():
    """Ubuntu 22.04's python3 is 3.10, older than the pins allow; the image brings its own 3.11."""
    from labkit import paths
    from labkit.backends import get_backend

    lines = readme_tpu_vm_block()
    on_the_vm = lines[lines.index(next(ln for ln in lines if ln.startswith("git clone"))) :]
    assert not [ln for ln in on_the_vm if re.search(r"python3\.1\d|venv|pip install|apt|deadsnakes|ppa", ln)]
    build = next(shlex.split(ln) for ln in on_the_vm if "docker build" in ln)
    assert "BACKEND=tpu" in build and build[build.index("-t") + 1] == get_backend("tpu").image
    run = next(shlex.split(ln) for ln in on_the_vm if "docker run" in ln)
    assert set(get_backend("tpu").container_args) <= set(run) and get_backend("tpu").image in run
    assert run[run.index(get_backend("tpu").image) + 1 :][:2] == ["invoke", "lab"]
    requires = re.search(r'requires-python = ">=3\.(\d+)"', (paths.ROOT / "pyproject.toml").read_text())
    base = re.search(r"ARG BASE_IMAGE=debian:(\w+)", (paths.ROOT / "docker" / "Dockerfile").read_text())
    assert requires and base and base.group(1) == "bookworm" and int(requires.group(1)) <= 11  # bookworm: 3.11
