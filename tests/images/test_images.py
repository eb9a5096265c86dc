"""The CPU image, for real: built with the project's own task, the lab run inside it, and the
security defaults checked on a running container.

These need a container engine. Where none answers they skip, unless JAXLAB_REQUIRE_ENGINE=1
(CI sets it), which turns a missing engine into a failure.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import FIXTURES, free_port, http_status, invoke, start_jupyter, stop, wait_for_jupyter

from labkit import BACKENDS, images, paths

pytestmark = pytest.mark.container
CPU = BACKENDS["cpu"]


def run_in_image(
    engine, image: str, *cmd: str, entrypoint: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess:
    args = [engine.command, "run", "--rm", *engine.run_args]
    if entrypoint:
        args += ["--entrypoint", entrypoint]
    if stdin is not None:
        args += ["-i"]
    return subprocess.run(args + [image, *cmd], input=stdin, capture_output=True, text=True, timeout=300)


def test_lab_passes_inside_the_cpu_image_and_output_belongs_to_the_invoking_user(cpu_image, tmp_path):
    out = tmp_path / "out" / "cpu"
    result = invoke("lab", "--backend", "cpu", "--runtime", "docker", "--out", str(out))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["ok"] is True
    assert results["environment"]["platform"] == "cpu" and results["environment"]["device_count"] == 8
    assert len(results["notebooks"]) == len(paths.notebook_paths())
    assert "checks" in (out / "summary.md").read_text()
    owners = {p.stat().st_uid for p in out.rglob("*")} | {out.stat().st_uid}
    assert owners == {os.getuid()}


def test_two_processes_run_in_one_cpu_container_and_end_with_the_verdict(cpu_image, tmp_path):
    """Both processes in one container, as on one host: they reach the coordinator on its loopback."""
    out = tmp_path / "out" / "cpu"
    result = invoke("lab", "--backend", "cpu", "--runtime", "docker", "--processes", "2", "--out", str(out))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["processes"] == 2 and "agree with the CPU reference" in results["run"]["verdict"]
    assert {s["name"] for s in results["run"]["steps"]} == {
        "15_multi_process",
        "15_multi_process.process-1",
        "checks",
    }
    assert (out / "notebooks" / "15_multi_process.process-1.ipynb").is_file()
    owners = {p.stat().st_uid for p in out.rglob("*")} | {out.stat().st_uid}
    assert owners == {os.getuid()}


def test_docker_runtime_takes_a_notebook_by_path_from_outside_the_lab(cpu_image, tmp_path):
    out = tmp_path / "out" / "cpu"
    notebook = FIXTURES / "01_ok.ipynb"  # not in the image: mounted read-only
    result = invoke(
        "lab", "--backend", "cpu", "--runtime", "docker", "--no-checks", "--out", str(out), "-n", str(notebook)
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert (out / "notebooks" / "01_ok.ipynb").is_file()
    assert set(json.loads((out / "results.json").read_text())["notebooks"]) == {"01_ok"}


def test_a_folder_of_guest_notebooks_runs_in_the_image_mounted_read_only(cpu_image, tmp_path):
    """A notebook written elsewhere, in a folder of the host's: the backend from the image's
    environment, a raises-exception cell allowed, its outputs kept on the host."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    folder, out = tmp_path / "workshop", tmp_path / "out" / "cpu"
    folder.mkdir()
    raising = new_code_cell("raise RuntimeError('meant')")
    raising.metadata["tags"] = ["raises-exception"]
    cells = [new_code_cell("import jax\nprint(jax.default_backend(), jax.device_count())"), raising]
    nbformat.write(new_notebook(cells=cells), folder / "guest.ipynb")
    before = (folder / "guest.ipynb").read_bytes()
    result = invoke("lab", "--runtime", "docker", "--no-checks", "--no-compare", "-n", str(folder), "--out", str(out))
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    record = json.loads((out / "results.json").read_text())["notebooks"]["guest"]
    assert record["guest"] and record["cells"][0]["text"] == "cpu 8\n"
    assert (out / "notebooks" / "guest.ipynb").is_file()
    assert (
        sorted(p.name for p in folder.iterdir()) == ["guest.ipynb"] and (folder / "guest.ipynb").read_bytes() == before
    )


def test_an_organisers_extra_package_reaches_their_notebook_in_the_image(cpu_image, tmp_path):
    """A guest that needs a package the image lacks fails in one line; JAXLAB_EXTRA_PACKAGES adds
    it to the image (the next run rebuilds it, and a run without it rebuilds it back)."""
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    folder = tmp_path / "workshop"
    folder.mkdir()
    nbformat.write(new_notebook(cells=[new_code_cell("import pooch\nprint(pooch.__version__)")]), folder / "data.ipynb")
    args = ["lab", "--runtime", "docker", "--no-checks", "--no-compare", "-n", str(folder)]
    without = invoke(*args, "--out", str(tmp_path / "without"))
    assert without.returncode == 1
    step = json.loads((tmp_path / "without" / "results.json").read_text())["run"]["steps"][0]
    assert step["error"].startswith("needs the package 'pooch', which this environment lacks")
    extra = {**os.environ, "JAXLAB_EXTRA_PACKAGES": "pooch==1.8.2"}
    done = invoke(*args, "--out", str(tmp_path / "with"), env=extra)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    cells = json.loads((tmp_path / "with" / "results.json").read_text())["notebooks"]["data"]["cells"]
    assert cells[0]["text"].strip().lstrip("v") == "1.8.2"  # pooch says v1.8.2


def test_container_runs_as_non_root(engine, cpu_image):
    result = run_in_image(engine, cpu_image, "id", "-u")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1000"


def test_image_sets_its_platform_and_refuses_to_run_elsewhere(engine, cpu_image):
    probe = "import os, labkit; print(os.environ['JAX_PLATFORMS']); labkit.setup('cpu')"
    result = run_in_image(engine, cpu_image, "python3", "-c", probe)
    assert result.returncode == 0 and result.stdout.strip() == "cpu", result.stderr
    # Asked for an accelerator it has neither the plugin nor the device for, the image's lab
    # refuses in one line before any notebook runs, and never runs on the CPU instead.
    for other in (name for name in BACKENDS if name != "cpu"):
        refused = run_in_image(engine, cpu_image, "invoke", "lab", "--backend", other, "--runtime", "local")
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1 and f"backend '{other}'" in lines[0], refused.stderr
        assert "passed" not in refused.stdout


def test_no_ca_bundle_or_secret_left_in_the_image(engine, cpu_image):
    cert = images.pip_cert()
    history = subprocess.run([engine.command, "history", "--no-trunc", cpu_image], capture_output=True, text=True)
    assert history.returncode == 0
    assert "pip_cert" not in history.stdout.replace("id=pip_cert", "")  # only the mount flag names it
    listing = run_in_image(engine, cpu_image, "sh", "-c", "ls /run/secrets 2>/dev/null; true")
    assert listing.stdout.strip() == ""
    if cert is None:
        return
    # Any file of the bundle's exact size must not be the bundle.
    size = cert.stat().st_size
    found = run_in_image(
        engine, cpu_image, "sh", "-c", f"find / -xdev -type f -size {size}c -exec sha256sum {{}} + 2>/dev/null; true"
    )
    import hashlib

    digest = hashlib.sha256(cert.read_bytes()).hexdigest()
    assert digest not in found.stdout


@pytest.fixture()
def jupyter_container(engine, cpu_image):
    token, port = secrets.token_hex(16), free_port()
    name = f"jaxlab-test-{port}"
    publish = [] if "host" in " ".join(engine.run_args) else ["-p", f"127.0.0.1:{port}:{port}"]
    started = subprocess.run(
        [
            engine.command,
            "run",
            "-d",
            "--name",
            name,
            *engine.run_args,
            *publish,
            "-e",
            f"JUPYTER_TOKEN={token}",
            "-e",
            f"JUPYTER_PORT={port}",
            cpu_image,
        ],
        capture_output=True,
        text=True,
    )
    assert started.returncode == 0, started.stderr
    try:
        yield name, port, token
    finally:
        subprocess.run([engine.command, "rm", "-f", name], capture_output=True)


def test_jupyterlab_requires_its_token_and_turns_healthy(engine, jupyter_container):
    name, port, token = jupyter_container
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    status = wait_for_jupyter(base, token)
    assert status == 200, "JupyterLab did not answer /api/status with its token"
    assert http_status(f"{base}/api/status") == 403
    assert http_status(f"{base}/api/status?token=wrong-{token}") == 403
    health = ""
    while time.monotonic() < deadline:
        health = subprocess.run(
            [engine.command, "inspect", "--format", "{{.State.Health.Status}}", name], capture_output=True, text=True
        ).stdout.strip()
        if health == "healthy":
            break
        time.sleep(2)
    assert health == "healthy"


def test_dockerfile_default_command_is_jupyterlab_with_tini(engine, cpu_image):
    inspect = subprocess.run([engine.command, "image", "inspect", cpu_image], capture_output=True, text=True)
    config = json.loads(inspect.stdout)[0]["Config"]
    assert config["Entrypoint"][0] == "tini"
    assert config["Cmd"][:5] == ["python3", "-m", "labkit.workspace", "jupyter", "lab"]  # seeds, then serves
    assert "JAX_PLATFORMS=cpu" in config["Env"]
    assert config["Labels"][images.LOCK_LABEL] == "cpu"  # a rebuild keeps the lock it was built from
    assert images.built_lock(engine, CPU) == "cpu"
    assert f"JAXLAB_ROOT={images.IMAGE_ROOT}" in config["Env"]


ACCELERATORS = [name for name, b in BACKENDS.items() if b.plugin_modules]
_built: set[str] = set()


def accelerator_image(name: str) -> str:
    """The backend's image, built once a session with its default lock (only where asked: GBs)."""
    if os.environ.get("JAXLAB_BUILD_ACCELERATOR_IMAGES") != "1":
        pytest.skip("building the cuda/tpu images takes GBs; JAXLAB_BUILD_ACCELERATOR_IMAGES=1 turns it on (CI does)")
    if name not in _built:
        built = invoke("build", "--backend", name, "--lock", BACKENDS[name].locks[0], timeout=1800)
        assert built.returncode == 0, built.stderr[-2000:]
        _built.add(name)
    return BACKENDS[name].image


def probe(engine, image: str, *args: str) -> dict:
    """tests/image_probe.py, run by the image's Python (sent on stdin: this checkout's copy)."""
    done = run_in_image(
        engine, image, "-", *args, entrypoint="python3", stdin=(Path(__file__).with_name("image_probe.py")).read_text()
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.parametrize("name", ACCELERATORS)
def test_accelerator_image_has_its_plugin_and_fails_loudly_without_the_device(engine, name):
    backend = BACKENDS[name]
    image = accelerator_image(name)
    modules = " or ".join(f"find_spec({m!r})" for m in backend.plugin_modules)
    check = f"from importlib.util import find_spec; import sys; sys.exit(0 if {modules} else 1)"
    assert run_in_image(engine, image, "python3", "-c", check).returncode == 0, f"{name} plugin missing"
    # No device in this container: JAX must refuse, never run the lab on the CPU.
    started = run_in_image(engine, image, "python3", "-c", f"import labkit; labkit.setup({name!r})")
    assert started.returncode != 0
    # Either JAX fails to start the platform, or (a plugin that finds no device, with cpu listed
    # for host callbacks) starts on the CPU and labkit refuses: one line either way.
    refusal = started.stderr.strip().splitlines()[-1]
    assert f"backend '{name}' asked for, but JAX" in refusal, started.stderr
    assert "could not start platform" in refusal or "refusing to fall back silently" in refusal
    env = run_in_image(engine, image, "printenv", "JAX_PLATFORMS")
    assert env.stdout.strip() == backend.jax_platforms_value


OPEN_HANDOUT = """
import json, os, nbformat
from nbclient import NotebookClient
folder = os.path.join(os.environ["JAXLAB_ROOT"], "handouts")
nb = nbformat.read(os.path.join(folder, sorted(n for n in os.listdir(folder) if n.startswith("01_"))[0]), as_version=4)
start = next(i for i, c in enumerate(nb.cells) if "labkit.start(" in c.source)
nb.cells = nb.cells[: start + 1]
NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True).execute()
print(json.dumps(nb.cells[start].outputs))
"""


@pytest.mark.parametrize("name", ACCELERATORS)
def test_a_handout_opened_in_the_accelerator_image_without_its_device_refuses_in_one_line(engine, name):
    """A learner opens handout 01 in jaxlab:<accelerator> as the image serves it (no backend
    injected): JAX must not start on the CPU; labkit.start says so in one line, naming the backend."""
    done = run_in_image(engine, accelerator_image(name), "python3", "-", stdin=OPEN_HANDOUT)
    assert done.returncode == 0, done.stderr[-2000:]
    outputs = json.loads(done.stdout.strip().splitlines()[-1])
    errors = [o for o in outputs if o["output_type"] == "error"]
    # One error, one line. (libtpu writes its own native warnings to the process's stderr before
    # that, which the kernel shows as a stream: the plugin's, not a traceback of the lab's.)
    assert len(errors) == 1 and all(o["output_type"] == "stream" for o in outputs if o not in errors), outputs
    text = "".join(errors[0]["traceback"])
    assert len(text.strip().splitlines()) == 1 and f"backend '{name}' asked for" in text, text
    assert "Traceback" not in "".join(o.get("text", "") for o in outputs)


PRUNED = [name for name in ACCELERATORS if images.pruned(BACKENDS[name].locks[0])]


@pytest.mark.parametrize("name", PRUNED)
def test_pruned_files_are_gone_and_nothing_in_jax_names_them(engine, name):
    globs = images.pruned(BACKENDS[name].locks[0])
    report = probe(engine, accelerator_image(name), "pruned", *globs)
    assert report["present"] == {}, "the image still holds pruned files"
    # A JAX upgrade that starts to use one of them shows up here, before it fails on a GPU.
    assert report["named"] == {}, f"JAX names files that docker/prune/{BACKENDS[name].locks[0]}.txt deletes"


# What an image may lack: the host's driver library, which the NVIDIA container runtime mounts,
# and the fabric libraries (MPI, PMIx, UCX, InfiniBand, libfabric) of NVSHMEM's multi-node
# bootstraps and transports, which a single-host run never loads.
HOST_DRIVER = {"libcuda.so.1"}
MULTI_NODE_ONLY = "nvidia/nvshmem/lib/nvshmem_"


@pytest.mark.parametrize("name", PRUNED)
def test_every_shared_library_still_finds_its_dependencies(engine, name):
    missing = probe(engine, accelerator_image(name), "missing")["missing"]
    unexpected = {
        lib: sorted(set(needs) - HOST_DRIVER)
        for lib, needs in missing.items()
        if not lib.startswith(MULTI_NODE_ONLY) and set(needs) - HOST_DRIVER
    }
    assert unexpected == {}


def test_compose_refuses_to_start_without_a_token(engine):
    env = {k: v for k, v in os.environ.items() if k != "JUPYTER_TOKEN"}
    result = subprocess.run(
        [*engine.compose, "-f", str(paths.ROOT / "compose.yaml"), "--profile", "cpu", "config"],
        capture_output=True,
        text=True,
        env=env,
        cwd=paths.ROOT,
    )
    assert result.returncode != 0 and "set JUPYTER_TOKEN" in result.stdout + result.stderr


def test_compose_cpu_profile_serves_jupyterlab_on_loopback_with_its_token(engine, cpu_image, tmp_path):
    token, port = secrets.token_hex(16), free_port()
    work = tmp_path / "work"
    work.mkdir()
    uid, gid = (os.getuid(), os.getgid()) if os.getuid() else (images.IMAGE_UID, images.IMAGE_UID)
    os.chown(work, uid, gid)  # as the README says: a folder of the user's, and the user's id
    env = dict(
        os.environ,
        JUPYTER_TOKEN=token,
        JAXLAB_PORT=str(port),
        JAXLAB_WORK=str(work),
        JAXLAB_UID=str(uid),
        JAXLAB_GID=str(gid),
    )
    compose = [*engine.compose, "-f", str(paths.ROOT / "compose.yaml"), "-p", f"jaxlabtest{port}", "--profile", "cpu"]
    up = subprocess.run([*compose, "up", "-d", "--no-build"], capture_output=True, text=True, env=env, cwd=paths.ROOT)
    try:
        assert up.returncode == 0, up.stderr
        ports = subprocess.run(
            [*compose, "port", "lab-cpu", "8888"], capture_output=True, text=True, env=env, cwd=paths.ROOT
        )
        assert ports.stdout.strip() == f"127.0.0.1:{port}"
        base = f"http://127.0.0.1:{port}"
        assert wait_for_jupyter(base, token) == 200
        assert http_status(f"{base}/api/status") == 403
        assert sorted(p.name for p in work.glob("*.ipynb")) == [p.name for p in paths.notebook_paths()]
    finally:
        subprocess.run([*compose, "down"], capture_output=True, env=env, cwd=paths.ROOT)


def test_the_readmes_compose_line_gives_a_fresh_learner_a_workspace_they_can_write_that_survives(
    engine, cpu_image, tmp_path
):
    """Exactly the README's line (a token, a profile, nothing else) in a folder with no ./work:
    the handouts in a workspace the learner can write, kept across down and up, never as root."""
    token, port = secrets.token_hex(16), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAXLAB_")}
    env.update(JUPYTER_TOKEN=token, JAXLAB_PORT=str(port))  # the port only so that tests can run side by side
    compose = [
        *engine.compose,
        "-f",
        str(paths.ROOT / "compose.yaml"),
        "--project-directory",
        str(tmp_path),
        "-p",
        f"jaxlabfresh{port}",
        "--profile",
        "cpu",
    ]

    def up():
        started = subprocess.run([*compose, "up", "-d", "--no-build"], capture_output=True, text=True, env=env)
        assert started.returncode == 0, started.stderr
        assert wait_for_jupyter(f"http://127.0.0.1:{port}", token) == 200

    try:
        up()
        uid = subprocess.run([*compose, "exec", "-T", "lab-cpu", "id", "-u"], capture_output=True, text=True, env=env)
        assert uid.returncode == 0 and uid.stdout.strip() == str(images.IMAGE_UID), uid.stdout + uid.stderr
        names = sorted(item["name"] for item in contents(port, token, "")["content"])
        assert names == sorted(p.name for p in paths.notebook_paths())
        contents(port, token, "mine.txt", {"type": "file", "format": "text", "content": "my notes"})
        subprocess.run([*compose, "down"], capture_output=True, env=env, check=True)
        up()
        assert contents(port, token, "mine.txt")["content"] == "my notes"
        assert not (tmp_path / "work").exists()  # nothing made on the host, as root or otherwise
    finally:
        subprocess.run([*compose, "down", "-v"], capture_output=True, env=env)


def test_a_workspace_the_user_cannot_write_stops_the_container_in_one_line(engine, cpu_image, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    work.chmod(0o555)  # nobody but root may write it, and the container never runs as root
    done = subprocess.run(
        [engine.command, "run", "--rm", *engine.run_args, "-v", f"{work}:/home/lab/work", cpu_image],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()
    assert len(last) == 1 and "workspace: /home/lab/work cannot be written" in last[0], done.stderr


def test_sigterm_to_invoke_jupyter_stops_its_container_and_keeps_the_token_off_command_lines(
    engine, cpu_image, tmp_path
):
    import signal

    port, token = free_port(), secrets.token_hex(16)
    proc = start_jupyter(port, token, tmp_path / "work")
    name = f"jaxlab-cpu-{proc.pid}"
    try:
        assert http_status(f"http://127.0.0.1:{port}/api/status?token={token}") == 200  # announced once it answers
        command_lines = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert token not in command_lines
        running = subprocess.run(
            [engine.command, "ps", "-q", "--filter", f"name=^{name}$"], capture_output=True, text=True
        ).stdout.strip()
        assert running, f"no container {name}"
    finally:
        code = stop(proc)
    assert code == 128 + signal.SIGTERM
    left = subprocess.run([engine.command, "ps", "-aq", "--filter", f"name=^{name}$"], capture_output=True, text=True)
    assert left.stdout.strip() == "", f"container {name} outlived invoke jupyter"


def contents(port: int, token: str, path: str, body: dict | None = None) -> dict:
    """JupyterLab's contents API: GET ``path``, or PUT ``body`` there."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/contents/{path}?token={token}",
        data=data,
        method="PUT" if body is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_a_learners_edit_survives_a_restart_and_the_workspace_holds_only_handouts(engine, cpu_image, tmp_path):
    work, token = tmp_path / "work", secrets.token_hex(16)
    first = paths.notebook_paths()[0].name
    port = free_port()
    proc = start_jupyter(port, token, work)
    try:
        listing = contents(port, token, "")
        names = sorted(item["name"] for item in listing["content"])
        assert names == sorted(p.name for p in paths.notebook_paths())  # the handouts, nothing else
        notebook = contents(port, token, first)["content"]
        assert "lab.solution(1)" in json.dumps(notebook)  # a handout, not the instructor's copy
        notebook["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "my note: vmap is neat"})
        contents(port, token, first, {"type": "notebook", "format": "json", "content": notebook})
    finally:
        stop(proc)
    assert (work / first).stat().st_uid == os.getuid()  # the learner's file is the learner's
    port = free_port()
    proc = start_jupyter(port, token, work)
    try:
        again = contents(port, token, first)["content"]
        assert again["cells"][-1]["source"] == "my note: vmap is neat"
    finally:
        stop(proc)


def test_the_image_holds_every_module_of_the_package(engine, cpu_image):
    """The build context (.dockerignore) lets in every module of labkit, subpackages included."""
    listing = "import labkit, pkgutil; print(sorted(m.name for m in pkgutil.walk_packages(labkit.__path__, 'labkit.')))"
    inside = run_in_image(engine, cpu_image, "python3", "-c", listing)
    here = subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True, cwd=paths.ROOT)
    assert inside.returncode == 0, inside.stderr
    assert inside.stdout == here.stdout
