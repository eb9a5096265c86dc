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

from labkit import BACKENDS, LabError

HELP_BACKEND = f"where JAX runs: {', '.join(BACKENDS)} (default: config jaxlab.backend, i.e. cpu)"


def clear_errors(fn):
    """Report labkit's errors as one line and an exit code, never as a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LabError as err:
            raise Exit(f"error: {err}", code=err.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("interrupted", code=130) from None

    return wrapper


@task(
    iterable=["notebook", "param"],
    help={
        "backend": HELP_BACKEND,
        "notebook": "run only this notebook (name, number or path); repeatable",
        "param": "notebook parameter as name=value, checked against the notebooks; repeatable",
        "jobs": "notebooks run at once (default: the number of cores)",
        "checks": "run the consistency checks (pytest) after the notebooks (default: on)",
        "runtime": "auto (docker if an engine answers, else local), docker (in the backend's image) "
                   "or local (this Python)",
        "out": "output folder (default: out/<backend>)",
    },
)
@clear_errors
def lab(c, backend=None, notebook=None, param=None, jobs=0, checks=True, runtime="auto", out=None):
    """Run the exercise notebooks and the consistency checks; write out/<backend>/."""
    from labkit import containers, params, runner, runtimes, summary

    backend = backend or c.config.jaxlab.backend
    given = params.parse_assignments(param or [])
    engine = containers.Engine.from_config(c.config)
    # Everything is checked here, on the host, before any image is built or kernel started.
    runner.make_plan(backend, runner.select_notebooks(notebook or []), given, check_device=False)
    where, notice = runtimes.resolve(runtime, engine)
    if notice:
        print(f"notice: {notice}", file=sys.stderr)
    if where == "docker":
        code = containers.run_lab(engine, backend, notebook or [], given, out, jobs or None, checks)
        if code:
            raise Exit(f"lab failed on {backend} in {containers.get_backend(backend).image} (exit {code})",
                       code=code)
        return
    result = runner.run_lab(backend, notebook or [], given, out=out, jobs=jobs or None, checks=checks)
    summary.print_table(result)
    if not result.ok:
        raise Exit(f"lab failed on {backend}: see {result.out / 'summary.md'}", code=1)


@task(help={"backend": HELP_BACKEND, "lock": "lock file variant, e.g. cuda12 for NVIDIA drivers < 580"})
@clear_errors
def build(c, backend=None, lock=None):
    """Build the backend's image: jaxlab:<backend> and jaxlab:<backend>-jax<version>."""
    from labkit import containers

    backend = backend or c.config.jaxlab.backend
    containers.build(containers.Engine.from_config(c.config), backend, lock)
    print(" ".join(containers.tags(containers.get_backend(backend))))


@task(help={"backend": HELP_BACKEND, "port": "port on 127.0.0.1 (default 8888)"})
@clear_errors
def jupyter(c, backend=None, port=8888):
    """JupyterLab in the backend's image on 127.0.0.1, token required; prints the URL."""
    from labkit import containers

    containers.jupyter(containers.Engine.from_config(c.config), backend or c.config.jaxlab.backend, port)


@task(help={"backend": HELP_BACKEND})
@clear_errors
def shell(c, backend=None):
    """A shell in the backend's image, with out/ mounted."""
    from labkit import containers

    containers.shell(containers.Engine.from_config(c.config), backend or c.config.jaxlab.backend)


@task(help={"backend": HELP_BACKEND, "pytest_args": "extra arguments for pytest, e.g. '-k vmap -x'"})
@clear_errors
def test(c, backend=None, pytest_args=""):
    """Run the whole test suite: consistency checks, runner tests, every notebook in smoke mode."""
    backend = backend or c.config.jaxlab.backend
    result = c.run(f"{sys.executable} -m pytest --backend {backend} {pytest_args}", pty=False, warn=True)
    if result.exited:
        raise Exit(code=result.exited)


@task(help={"backend": HELP_BACKEND, "smoke": "small sizes (default: full sizes, as invoke lab)",
            "jobs": "notebooks run at once in the lab (default: the number of cores)",
            "what": "notebooks (the runner vs papermill's CLI), images (sizes, rebuild, docker vs local) or all"})
@clear_errors
def bench(c, backend=None, smoke=False, jobs=0, what="notebooks"):
    """Rerunnable figures: the notebook phase against papermill's CLI one by one; image sizes and times."""
    from labkit import bench as bench_mod
    from labkit import containers

    if what not in ("notebooks", "images", "all"):
        raise Exit(f"error: unknown --what {what!r}; valid: notebooks, images, all", code=2)
    if what in ("notebooks", "all"):
        bench_mod.notebook_phase(backend or c.config.jaxlab.backend, smoke=smoke, jobs=jobs or None)
    if what in ("images", "all"):
        bench_mod.images(containers.Engine.from_config(c.config))


@task(
    positional=["baseline", "run"],
    iterable=["also"],
    help={"baseline": "the run the others are compared with: a run folder (out/cpu) or results file "
                      "(tests/reference/cpu.json)",
          "run": "the run to compare with the baseline",
          "also": "a further run to compare with the baseline; repeatable",
          "force": "compare runs of different lab versions, notebooks or parameters anyway (said in the report)",
          "out": "report folder (default: out/compare)"},
)
@clear_errors
def compare(c, baseline, run, also=None, force=False, out=None):
    """Compare results across runs, e.g. `invoke compare out/cpu out/cuda`: tolerances, speedups, a report."""
    from labkit import compare as compare_mod

    runs = [baseline, run, *(also or [])]
    result = compare_mod.run(runs, **({"out": Path(out)} if out else {}), force=force)
    compare_mod.print_table(result)
    if not result.ok:
        raise Exit(f"inconsistent: {result.summary()}", code=1)


@task(help={"backend": HELP_BACKEND, "name": "file name under tests/reference/ (default: the backend)"})
@clear_errors
def reference(c, backend=None, name=None):
    """Regenerate tests/reference/<name>.json and <name>-smoke.json by running the lab here."""
    from labkit import reference as reference_mod

    for path in reference_mod.regenerate(backend or c.config.jaxlab.backend, name):
        print(f"wrote {path}")


@task(help={"name": "only this lock (cpu, cuda, cuda12, tpu); default all"})
@clear_errors
def lock(c, name=None):
    """Regenerate the images' hashed lock files (docker/locks/) from pyproject.toml's pins."""
    from labkit import locks

    for path in locks.generate([name] if name else None):
        print(f"wrote {path.relative_to(locks.paths.ROOT)}")


@task
@clear_errors
def notebooks(c):
    """List the notebooks and the parameters each accepts."""
    from labkit import params, paths

    for nb in paths.notebook_paths():
        print(nb.stem)
        for name, p in params.declared(nb).items():
            print(f"  -p {name}={p['default']:<12} {p['type']:<5}  {p['help']}")


ns = Collection(lab, test, bench, build, jupyter, shell, compare, reference, lock, notebooks)
# Defaults live in config so INVOKE_JAXLAB_BACKEND=cuda (or an invoke.yaml) changes them.
ns.configure({"jaxlab": {
    "backend": "cpu",
    "engine": "docker",  # or podman, or a path such as /usr/bin/docker
    "build_args": "",  # extra arguments for every image build, e.g. "--network host"
    "run_args": "",  # extra arguments for every container run
    "compose": "docker compose",  # or docker-compose, podman-compose
}})
