"""One process of a multi-process run: the same program in every process, as JAX's multi-controller
runtime wants it.

    python -m labkit.rank STAGING

Whatever started the processes (``invoke lab --processes N`` on this host, ``srun -n N``, a TPU
pod's ``--worker=all``, a JobSet) starts this module in each; it reads the run's plan from
``STAGING/processes/plan.json`` (written by labkit.launch), runs the multi-process notebooks and
then the cross-process checks, each joining the other processes through JAX's coordinator, and
writes how each step ended to ``STAGING/processes/<i>.json``. It stops at its first failed step:
the other processes could not go on without it, and whatever launched them stops them.

Process 0's files are named as a one-process run's; the others' carry ``.process-<i>``.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from . import signals
from .checks_phase import CHECKS_TIMEOUT, check_session
from .distributed import PROCESS_ID
from .plan import Plan
from .steps import Outcome, checks_outcome, run_notebook

# Where a cluster's launcher says which process this is (JAX reads the same variables).
LAUNCHER_IDS = (PROCESS_ID, "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "JOB_COMPLETION_INDEX")


def told_by() -> str | None:
    """The launcher's variable that says which process this is, if any."""
    return next((name for name in LAUNCHER_IDS if os.environ.get(name, "").isdigit()), None)


def process_id() -> int:
    name = told_by()
    return int(os.environ[name]) if name else 0


def suffix(process: int) -> str:
    return "" if process == 0 else f".process-{process}"


def plan_file(staging: Path) -> Path:
    return staging / "processes" / "plan.json"


def write_plan(staging: Path, plan: Plan, processes: int, checks: bool, timeout: float, cell_timeout) -> None:
    plan_file(staging).parent.mkdir(parents=True, exist_ok=True)
    plan_file(staging).write_text(
        json.dumps(
            {
                "backend": plan.backend,
                "processes": processes,
                "notebooks": [str(nb) for nb in plan.notebooks],
                "params": plan.params,
                "given": plan.given,
                "checks": checks,
                "timeout": timeout,
                "cell_timeout": cell_timeout,
            }
        )
    )


def run(staging: Path) -> list[Outcome]:
    spec = json.loads(plan_file(staging).read_text())
    plan = Plan(spec["backend"], [Path(nb) for nb in spec["notebooks"]], spec["params"], spec["given"])
    me = process_id()
    results_dir = (staging / "results").resolve()
    cancel = threading.Event()
    outcomes: list[Outcome] = []
    for nb in plan.notebooks:
        outcomes.append(
            run_notebook(plan, nb, staging, results_dir, spec["timeout"], spec["cell_timeout"], cancel, suffix(me))
        )
        if not outcomes[-1].ok:
            return outcomes
    if spec["checks"]:
        start = time.monotonic()
        session = check_session(
            plan.backend,
            staging,
            suffix(me).replace(".", "-"),
            ["--processes", str(spec["processes"])],
            CHECKS_TIMEOUT,
            cancel,
        )
        outcomes.append(checks_outcome([session], time.monotonic() - start))
        outcomes[-1].name += suffix(me)
    return outcomes


def main(argv: list[str]) -> int:
    staging = Path(argv[0])
    me = process_id()
    with signals.stop_on_signals():  # SIGTERM from the launcher stops this process's kernel and pytest too
        try:
            outcomes = run(staging)
        except KeyboardInterrupt:
            return 130
    report = {
        "process": me,
        "host": socket.gethostname(),
        "told_by": told_by(),
        "steps": [asdict(o) for o in outcomes],
    }
    (staging / "processes" / f"{me}.json").write_text(json.dumps(report))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
