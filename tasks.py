"""JAX Lab tasks. Thin on purpose: parse the flags, call ``labkit``, turn its errors into a
one-line message and an exit code (2 for bad input, 1 for a failed run, 130 for Ctrl-C).

    invoke lab [--backend cpu] [--notebook NAME ...] [-p name=value ...]
    invoke test
    invoke bench
    invoke notebooks
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

from invoke import Collection, Exit, task

from labkit import BACKENDS, LabError, UsageError
from labkit.signals import stop_on_signals

HELP_BACKEND = f"where JAX runs: {', '.join(BACKENDS)} (default: config jaxlab.backend, i.e. cpu)"


def clear_errors(fn):
    """Report labkit's errors as one line and an exit code, never as a traceback; SIGTERM and
    SIGHUP end a task the way Ctrl-C does, so whatever it started is stopped on the way out."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with stop_on_signals():
                return fn(*args, **kwargs)
        except LabError as err:
            raise Exit(f"error: {err}", code=err.exit_code) from None
        except KeyboardInterrupt as stop:
            raise Exit("interrupted", code=getattr(stop, "exit_code", 130)) from None

    return wrapper


def number(value, flag: str, kind=int, minimum: float = 1):
    """A numeric flag, checked here: invoke's own conversion would end in a traceback."""
    if value is None:
        return None
    try:
        parsed = kind(value)
    except ValueError:
        parsed = None
    if parsed is None or not minimum <= parsed < float("inf"):  # also refuses NaN and infinity
        what = "a whole number" if kind is int else "a number"
        raise UsageError(f"{flag} {value!r}: give {what}, {minimum:g} or more")
    return parsed


def port_number(value) -> int:
    port = number(value, "--port")
    if port > 65535:
        raise UsageError(f"--port {port}: give a port number, 1 to 65535")
    return port


@task(
    iterable=["notebook", "param"],
    help={
        "backend": HELP_BACKEND,
        "notebook": "run only this notebook (name, number or path); repeatable",
        "param": "notebook parameter as name=value, checked against the notebooks; repeatable",
        "jobs": "notebooks run at once, 1 or more (default: the number of cores)",
        "cell_timeout": "seconds one cell may run before its notebook fails, naming the cell (default: no limit "
        "but the notebook's 900 s)",
        "checks": "run the consistency checks (pytest) after the notebooks (default: on)",
        "runtime": "auto (docker if an engine answers, else local), docker (in the backend's image) "
        "or local (this Python)",
        "out": "output folder (default: out/<backend>)",
        "compare": "end with the verdict against the CPU reference of the same parameters; a disagreement "
        "fails the run (default: on)",
        "against": "the reference (a results file or run folder) for the verdict, instead of the CPU's",
        "processes": "run the multi-process notebooks and checks as this many JAX processes (default 1)",
        "launcher": "what starts those processes: local (on this host, default) or srun (Slurm)",
        "cache": "read and keep compiled programs in the compilation cache (default: on; --no-cache compiles "
        "everything afresh and keeps nothing)",
    },
)
@clear_errors
def lab(
    c,
    backend=None,
    notebook=None,
    param=None,
    jobs=None,
    checks=True,
    runtime="auto",
    out=None,
    cell_timeout=None,
    compare=True,
    against=None,
    processes=None,
    launcher="local",
    cache=True,
):
    """Run the exercise notebooks and the consistency checks; write out/<backend>/."""
    from labkit import environment, lab_in_container, outdir, params, paths, runner, runtimes, summary
    from labkit.engine import Engine

    backend = backend or c.config.jaxlab.backend
    given = params.parse_assignments(param or [])
    jobs, cell_timeout = number(jobs, "--jobs"), number(cell_timeout, "--cell-timeout", float, 0.001)
    processes = number(processes, "--processes") or 1
    engine = Engine.from_config(c.config)
    # Everything is checked here, on the host, before any image is built or kernel started.
    runner.plan_run(backend, notebook or [], given, processes, launcher, check_device=False)
    outdir.check(out or paths.OUT / backend)
    if against:  # read now, as compare reads it: a file that is not lab results stops nothing half-way
        from labkit.compare.load import load

        try:
            load(against)
        except UsageError as err:
            raise UsageError(f"--against {err}") from None
    where, notice = runtimes.resolve(runtime, engine)
    if notice:
        print(f"notice: {notice}", file=sys.stderr)
    if where == "docker":
        if launcher != "local":
            raise UsageError(f"--launcher {launcher} starts processes on the host: add --runtime local")
        code = lab_in_container.run_lab(
            engine, backend, notebook or [], given, out, jobs, checks, cell_timeout, compare, against, processes, cache
        )
        if code:
            raise Exit(f"lab failed on {backend} in {BACKENDS[backend].image} (exit {code})", code=code)
        return
    if notice := environment.jax_notice():
        print(f"notice: {notice}", file=sys.stderr)
    result = runner.run_lab(
        backend,
        notebook or [],
        given,
        out=out,
        jobs=jobs,
        checks=checks,
        cell_timeout=cell_timeout,
        compare=compare,
        against=against,
        processes=processes,
        launcher=launcher,
        cache=cache,
    )
    summary.print_table(result)
    if not result.ok:
        # In a run of several processes, the first failure names the process the others stopped for.
        first = next((s.error for s in result.steps if processes > 1 and s.status in ("failed", "timeout")), "")
        raise Exit(f"lab failed on {backend}: {first + '; ' if first else ''}see {result.out / 'summary.md'}", code=1)


@task(
    help={
        "tpu_name": "the TPU slice's name",
        "zone": "its zone, e.g. us-central2-b",
        "accelerator_type": "its type, e.g. v4-32 or v5litepod-16 (it sets the host count and runtime version)",
        "create": "create the slice first, with its generation's runtime version",
        "dry_run": "print the commands, run nothing",
        "out": "where each host's results land (default out/pod/<name>)",
    }
)
@clear_errors
def pod(c, tpu_name="", zone="", accelerator_type="", create=False, dry_run=False, out=None):
    """Run the lab on every host of a Cloud TPU pod slice, one process each, and gather the results."""
    from labkit import paths
    from labkit import pod as pod_mod
    from labkit.engine import Engine

    folder = Path(out) if out else paths.OUT / "pod" / (tpu_name or "slice")
    if dry_run:
        for step in pod_mod.steps(tpu_name, zone, accelerator_type, create, folder, folder / pod_mod.ARCHIVE):
            print(f"# {step.what}\n{step.line}")
        return
    pod_mod.run(tpu_name, zone, accelerator_type, create, folder, Engine.from_config(c.config))


@task(
    help={
        "backend": "cuda or tpu",
        "image": "the lab's image as the cluster pulls it, e.g. REGISTRY/jaxlab:tpu",
        "accelerator_type": "TPU: the slice, e.g. v5litepod-16 (sets the hosts, topology and chips)",
        "hosts": "GPU: how many hosts (one process each)",
        "gpus_per_host": "GPU: the GPUs of each host (default 1)",
    }
)
@clear_errors
def jobset(c, backend=None, image="", accelerator_type="", hosts=None, gpus_per_host=None):
    """Print deploy/jobset.yaml filled in: the lab as a Kubernetes JobSet, one process per host."""
    from labkit import jobset as jobset_mod

    manifest = jobset_mod.render(
        backend or c.config.jaxlab.backend,
        image,
        accelerator_type,
        number(hosts, "--hosts") or 0,
        number(gpus_per_host, "--gpus-per-host") or 1,
    )
    print(jobset_mod.dump(manifest), end="")


@task(help={"backend": HELP_BACKEND, "lock": "lock file variant, e.g. cuda12 for NVIDIA drivers < 580"})
@clear_errors
def build(c, backend=None, lock=None):
    """Build the backend's image: jaxlab:<backend> and jaxlab:<backend>-jax<version>."""
    from labkit import get_backend, images
    from labkit.engine import Engine

    backend = backend or c.config.jaxlab.backend
    images.build(Engine.from_config(c.config), backend, lock)
    print(" ".join(images.tags(get_backend(backend))))


@task(
    iterable=["reset"],
    help={
        "backend": HELP_BACKEND,
        "port": "port on 127.0.0.1 (default 8888)",
        "work": "the learner's notebooks, kept on this machine (default: ./work, seeded with the handouts)",
        "reset": "put this handout back into the work folder (yours is kept as .bak); repeatable",
        "anywhere": "let --work be outside your home folder and the checkout (never a system folder)",
    },
)
@clear_errors
def jupyter(c, backend=None, port="8888", work=None, reset=None, anywhere=False):
    """JupyterLab in the backend's image on 127.0.0.1, token required, on your work folder; prints the URL."""
    from labkit import jupyter as jupyter_mod
    from labkit.engine import Engine

    port = port_number(port)
    jupyter_mod.jupyter(
        Engine.from_config(c.config),
        backend or c.config.jaxlab.backend,
        port,
        Path(work) if work else None,
        reset or [],
        anywhere=anywhere,
    )


@task(help={"backend": HELP_BACKEND})
@clear_errors
def shell(c, backend=None):
    """A shell in the backend's image, with out/ mounted."""
    from labkit import lab_in_container
    from labkit.engine import Engine

    lab_in_container.shell(Engine.from_config(c.config), backend or c.config.jaxlab.backend)


@task(
    help={
        "backend": HELP_BACKEND,
        "jobs": "test processes at once (default: the number of cores, at most 4; 1 runs the suite in one process)",
        "pytest_args": "extra arguments for pytest, e.g. '-k vmap -x'; paths in them are relative to the checkout",
    }
)
@clear_errors
def test(c, backend=None, jobs=None, pytest_args=""):
    """Run the whole test suite: consistency checks, runner tests, every notebook in smoke mode."""
    import shlex

    from labkit import get_backend, paths, processes
    from labkit.plan import cpu_count

    backend = get_backend(backend or c.config.jaxlab.backend).name
    # Most tests wait on processes they start (kernels, pip, invoke itself): pytest-xdist spreads
    # them over the cores. More than 4 gains little and multiplies the memory of the lab's runs.
    workers = number(jobs, "--jobs") or min(cpu_count(), 4)
    try:
        extra = shlex.split(pytest_args)
    except ValueError as err:
        raise UsageError(f"--pytest-args {pytest_args!r}: {err}") from None
    # An argument list, never a shell line: nothing given here is run by a shell. However the task
    # ends (Ctrl-C, SIGTERM), pytest and what it started are stopped with it. A -n in --pytest-args
    # comes later, so it wins. From the checkout, wherever invoke was typed (lab/, a folder outside
    # with -r): pytest finds its configuration and its test paths only there.
    parallel = ["-n", str(workers) if workers > 1 else "0"]
    cmd = [sys.executable, "-m", "pytest", "--backend", backend, *parallel, *extra]
    if code := processes.run(cmd, cwd=paths.ROOT):
        raise Exit(code=code)


@task(
    help={
        "backend": HELP_BACKEND,
        "smoke": "small sizes (default: full sizes, as invoke lab)",
        "jobs": "notebooks run at once in the lab (default: the number of cores)",
        "what": "notebooks (the runner vs papermill's CLI), lab (the whole lab cold and warm: wall, CPU, "
        "compilation and process starts; against --baseline if given), images (sizes, rebuild, docker vs "
        "local), learner (one learner's memory, for invoke hub's plan), hub (a class logging in at once) or all",
        "baseline": "with --what lab: a git revision whose lab runs in turns with this checkout's, for a ratio",
        "repeat": "with --what lab: cold and warm runs of each lab; the medians are compared (default: 1)",
        "learners": "with --what hub: learners logging in at once (default: 20)",
    }
)
@clear_errors
def bench(c, backend=None, smoke=False, jobs=None, what="notebooks", baseline=None, repeat=1, learners="20"):
    """Rerunnable figures: the notebook phase against papermill's CLI one by one; image sizes and times."""
    from labkit import bench as bench_mod
    from labkit import outdir
    from labkit.engine import Engine

    if what not in (*bench_mod.FIGURES, "all"):
        raise UsageError(f"unknown --what {what!r}; valid: {', '.join(bench_mod.FIGURES)}, all")
    jobs = number(jobs, "--jobs")
    outdir.own_files([bench_mod.figures_file(w) for w in bench_mod.FIGURES if what in (w, "all")], "invoke bench")
    if what in ("notebooks", "all"):
        bench_mod.notebook_phase(backend or c.config.jaxlab.backend, smoke=smoke, jobs=jobs)
    if what in ("lab", "all"):
        from labkit.bench_lab import whole_lab

        whole_lab(
            backend or c.config.jaxlab.backend,
            smoke=smoke,
            jobs=jobs,
            baseline=baseline,
            repeat=number(repeat, "--repeat"),
        )
    if what in ("images", "all"):
        bench_mod.images(Engine.from_config(c.config))
    if what in ("hub", "all"):
        from labkit.hub import load
        from labkit.results import write_json

        figures = load.class_load(
            Engine.from_config(c.config), backend or c.config.jaxlab.backend, number(learners, "--learners")
        )
        write_json(bench_mod.figures_file("hub"), figures)
        peak = figures["peak_per_learner_bytes"] / 2**30
        print(
            f"{figures['passed']} of {figures['learners']} learners ran the room check; all done in "
            f"{figures['all_done_s']} s (servers ready after {figures['ready_median_s']} s, median); "
            f"a learner's container at most {peak:.2f} GiB: this machine holds {figures['machine_holds']}; "
            f"{bench_mod.figures_file('hub')}"
        )
    if what in ("learner", "all"):
        from labkit.hub import measure

        figures = measure.learner(backend or c.config.jaxlab.backend)
        print(
            f"one learner: kernel {figures['kernel_peak_bytes'] / 2**30:.2f} GiB at its peak "
            f"({figures['heaviest_notebook']}), "
            f"JupyterLab {figures['server_bytes'] / 2**30:.2f} GiB; {measure.MEASURED_HERE}"
        )


@task(
    positional=["baseline", "run"],
    iterable=["also"],
    help={
        "baseline": "the run the others are compared with: a run folder (out/cpu) or results file "
        "(lab/labkit/references/cpu.json)",
        "run": "the run to compare with the baseline",
        "also": "a further run to compare with the baseline; repeatable",
        "force": "compare runs of different lab versions, notebooks or parameters anyway (said in the report)",
        "out": "report folder (default: out/compare)",
    },
)
@clear_errors
def compare(c, baseline, run, also=None, force=False, out=None):
    """Compare results across runs, e.g. `invoke compare out/cpu out/cuda`: tolerances, speedups, a report."""
    from labkit import compare as compare_mod
    from labkit import outdir
    from labkit.compare import report

    target = outdir.owned_folder(Path(out) if out else report.OUT, report.MARKER, "--out", "invoke compare")
    comparison = compare_mod.run([baseline, run, *(also or [])], force=force)
    md, page, *_ = report.write_reports(comparison, target)
    report.print_table(comparison)
    print(f"report: {md}  ·  {page}")
    if not comparison.ok:
        raise Exit(f"inconsistent: {comparison.summary()}", code=1)


@task(help={"backend": HELP_BACKEND, "name": "file name under lab/labkit/references/ (default: the backend)"})
@clear_errors
def reference(c, backend=None, name=None):
    """Regenerate lab/labkit/references/<name>.json and <name>-smoke.json by running the lab here."""
    from labkit import reference as reference_mod

    for path in reference_mod.regenerate(backend or c.config.jaxlab.backend, name):
        print(f"wrote {path}")


@task(
    help={
        "name": f"only this lock ({', '.join(lock for b in BACKENDS.values() for lock in b.locks)}); default all",
        "refresh": "move the cut-off to now, taking the newest releases the pins allow (all locks)",
        "cutoff": "move the cut-off to this UTC date or time, e.g. 2026-11-26 or 2026-11-26T12:00:00Z (all locks)",
    }
)
@clear_errors
def lock(c, name=None, refresh=False, cutoff=None):
    """Regenerate the images' hashed lock files (docker/locks/) from pyproject.toml's pins.

    Only packages uploaded before the cut-off date recorded in the locks' headers count, so this
    gives the same locks until a pin changes; --refresh (now) or --cutoff DATE moves that date,
    for all the locks together, on purpose.
    """
    from labkit import UsageError, locks

    if refresh and cutoff:
        raise UsageError("give --refresh or --cutoff, not both")
    when = locks.cutoff_now() if refresh else locks.parse_cutoff(cutoff) if cutoff else None
    for path in locks.generate([name] if name else None, when):
        uploaded = locks.header(path.stem)["cutoff"]
        print(f"wrote {path.relative_to(locks.paths.ROOT)} (packages uploaded before {uploaded})")


@task(help={"check": "change nothing: fail, naming them, if any of the files is behind the registry"})
@clear_errors
def sync(c, check=False):
    """Write what the Dockerfile, compose and the README say of each backend, and the notebooks' text twins."""
    from labkit import sync as sync_mod

    if check:
        if stale := sync_mod.stale():
            raise LabError(
                f"{', '.join(str(p.relative_to(sync_mod.paths.ROOT)) for p in stale)} "
                f"{'is' if len(stale) == 1 else 'are'} behind lab/labkit/backends.py or the notebooks: run invoke sync"
            )
        print("in step with lab/labkit/backends.py and the notebooks")
        return
    for path in sync_mod.sync():
        print(f"wrote {path.relative_to(sync_mod.paths.ROOT)}")


@task
@clear_errors
def lint(c):
    """Every linter of .pre-commit-config.yaml over every file: ruff, ruff format, mypy, hadolint, shellcheck, sync."""
    import os

    from labkit import paths, processes

    # The hooks are this environment's tools (the dev extra), found on PATH beside this Python.
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    cmd = [sys.executable, "-m", "pre_commit", "run", "--all-files", "--color", "never"]
    if code := processes.run(cmd, cwd=paths.ROOT, env=env):
        raise Exit(code=code)


@task(help={"out": "folder for the learner notebooks (default: handouts/)"})
@clear_errors
def handouts(c, out=None):
    """Write the learner notebooks: every exercise's answer replaced by an "Exercise N" stub."""
    from labkit import handouts as handouts_mod

    for path in handouts_mod.write(Path(out) if out else handouts_mod.OUT):
        print(f"wrote {path}")


@task(
    help={
        "backend": HELP_BACKEND,
        "out": "the bundle's folder (default: out/bundle-<backend>); only an earlier bundle is replaced",
        "lock": "lock file variant, e.g. cuda12 (default: the one the image was built from)",
        "load": "on the machine without internet: check this bundle's files, load its image, install its wheels",
        "install": "with --load: install the wheels into this Python (default: on)",
        "image": "with --load: load the image into the engine (default: on)",
    }
)
@clear_errors
def bundle(c, backend=None, out=None, lock=None, load=None, install=True, image=True):
    """An offline kit in one folder: the image, the wheels, the handouts and their checksums; --load DIR uses it."""
    from labkit import bundle as bundle_mod
    from labkit.engine import Engine

    engine = Engine.from_config(c.config)
    if load:
        if out or lock:
            raise UsageError(f"{'--out' if out else '--lock'} is for making a bundle; --load {load} reads one")
        bundle_mod.load(engine, Path(load), image=image, install=install, backend=backend)
        return
    if not (install and image):
        raise UsageError(f"{'--no-install' if not install else '--no-image'} goes with --load DIR")
    bundle_mod.make(engine, backend or c.config.jaxlab.backend, Path(out) if out else None, lock)


@task(
    help={
        "backend": HELP_BACKEND,
        "learners": "the class size",
        "plan": "print each learner's share of this machine (or of the one described) and start nothing",
        "share": "on several GPUs, seat everyone on memory shares instead of one GPU each",
        "gpus": "with --plan: a machine with this many GPUs (default: this machine's)",
        "gpu_memory": "with --plan --gpus: GiB of memory per GPU (default: 80)",
        "gpu_name": "with --plan --gpus: the GPUs' name, for the plan's words",
        "mig": "with --plan --gpus: MIG instances per GPU",
        "tpu_chips": "with --plan: a TPU VM with this many chips (default: this machine's)",
        "cores": "with --plan: this many cores (default: this machine's)",
        "memory": "with --plan: this many GiB of memory (default: this machine's)",
        "learner_memory": "GiB one learner's server and kernel need (default: invoke bench --what learner's figure)",
        "port": "the hub's port, and the three above it for its own parts (default: 8000)",
        "bind": "the address learners reach the hub on (default: 127.0.0.1; another needs --password-file)",
        "password_file": "a file holding the learners' shared password (default: one made in out/hub/)",
        "learners_list": "a file of learner names, one a line: only they may log in",
        "idle_minutes": "stop a learner's server after this many idle minutes (default: 60)",
        "out": "the hub's own folder: its database, secrets and the learners' seats (default: out/hub)",
        "max_hours": "stop any learner's server after this many hours (default: no limit)",
    }
)
@clear_errors
def hub(
    c,
    learners,
    backend=None,
    plan=False,
    share=False,
    gpus=None,
    gpu_memory=None,
    gpu_name="GPU",
    mig=None,
    tpu_chips=None,
    cores=None,
    memory=None,
    learner_memory=None,
    port="8000",
    bind="127.0.0.1",
    password_file=None,
    learners_list=None,
    idle_minutes="60",
    max_hours=None,
    out=None,
):
    """JupyterHub for a class, a jaxlab container and a lease per learner; --plan: each learner's share."""
    from labkit import get_backend
    from labkit.engine import Engine
    from labkit.hub import leases, room, serve
    from labkit.hub.hub_settings import Settings
    from labkit.hub.plan_table import print_plan

    name = get_backend(backend or c.config.jaxlab.backend).name
    count = number(learners, "--learners")
    if learner_memory is None:
        need = leases.measured_learner_memory()
    else:
        need = int(number(learner_memory, "--learner-memory", float, minimum=0.1) * leases.GiB)
    described = any(v is not None for v in (gpus, tpu_chips, cores, memory))
    if described and not plan:
        raise UsageError("--gpus, --tpu-chips, --cores and --memory describe another machine: they go with --plan")
    where = (
        room.described(
            name,
            number(cores, "--cores"),
            number(memory, "--memory", float),
            number(gpus, "--gpus") or 0,
            number(gpu_memory, "--gpu-memory", float) or 80,
            gpu_name,
            number(mig, "--mig") or 0,
            number(tpu_chips, "--tpu-chips") or 0,
        )
        if described
        else room.this_machine(name)
    )
    lease_plan = leases.plan(where, count, need, share)
    if plan:
        print_plan(lease_plan)
        return
    names: tuple[str, ...] = ()
    if learners_list:
        try:
            names = tuple(line.strip() for line in Path(learners_list).read_text().splitlines() if line.strip())
        except OSError as err:
            raise UsageError(f"--learners-list {learners_list}: {err.strerror}") from None
    if password_file and not Path(password_file).is_file():
        raise UsageError(f"--password-file {password_file}: no such file")
    if bind not in ("127.0.0.1", "localhost") and not password_file:
        raise UsageError(f"--bind {bind} exposes the hub beyond this machine: give the learners' --password-file")
    base = port_number(port)
    if base > 65532:
        raise UsageError(f"--port {base}: the hub takes it and the three above it; give 65532 or less")
    settings = Settings.at(
        base,
        backend=name,
        bind=bind,
        password_file=str(Path(password_file).resolve()) if password_file else "",
        learners=count,
        learners_list=names,
        learner_memory=need,
        share=share,
        idle_timeout=round(number(idle_minutes, "--idle-minutes", float, minimum=0.1) * 60),
        cull_every=max(5, min(60, round(number(idle_minutes, "--idle-minutes", float, minimum=0.1) * 30))),
        max_age=int(number(max_hours, "--max-hours", float, minimum=0.01) * 3600) if max_hours else 0,
    )
    state = Path(out) if out else serve.STATE
    if code := serve.serve(serve.prepare(Engine.from_config(c.config), settings, state)):
        raise Exit(code=code)


@task
@clear_errors
def notebooks(c):
    """List the notebooks and the parameters each accepts."""
    from labkit import params, paths

    for nb in paths.notebook_paths():
        print(nb.stem)
        for name, p in params.declared(nb).items():
            print(f"  -p {name}={p['default']:<12} {p['type']:<5}  {p['help']}")


@task
@clear_errors
def clean_cache(c):
    """Empty the compilation cache: every backend's on this machine, and the images' named volume."""
    from labkit import compile_cache
    from labkit.engine import Engine
    from labkit.images import CACHE_VOLUME

    for folder in compile_cache.clean():
        print(f"emptied {folder}")
    engine = Engine.from_config(c.config)
    if engine.answers() and not engine.remove_volume(CACHE_VOLUME):
        raise LabError(f"the images' volume {CACHE_VOLUME} is in use: stop the lab's containers, then run this again")


ns = Collection(
    lab,
    clean_cache,
    test,
    bench,
    build,
    jupyter,
    shell,
    compare,
    reference,
    lock,
    handouts,
    bundle,
    notebooks,
    sync,
    lint,
    hub,
    pod,
    jobset,
)
# Defaults live in config so INVOKE_JAXLAB_BACKEND=cuda (or an invoke.yaml) changes them.
ns.configure(
    {
        "jaxlab": {
            "backend": "cpu",
            "engine": "docker",  # or podman, or a path such as /usr/bin/docker
            "build_args": "",  # extra arguments for every image build, e.g. "--network host"
            "run_args": "",  # extra arguments for every container run
            "compose": "docker compose",  # or docker-compose, podman-compose
        }
    }
)
