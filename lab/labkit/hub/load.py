"""A class-sized load on the hub, as a benchmark (`invoke bench --what hub`): learners log in at
once through the REST API, each starts a server and runs the room check in it, and the figures
say how long until all are done, what each learner's container held at its peak, and how many
learners this machine holds at that peak.

It starts a hub of its own (a temporary folder, free ports), and leaves no container or volume.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

from .. import processes
from ..engine import Engine
from ..errors import LabError
from ..ports import free_ports
from . import serve
from .api import HubAPI
from .hub_settings import Settings
from .leases import HOST_RESERVE_MEMORY, GiB

# The room check as a learner runs it: the instructor's notebook, in the learner's own kernel.
RUN_ROOM_CHECK = (
    "import os, nbformat; from nbclient import NotebookClient; "
    "nb = nbformat.read(os.path.join(os.environ['JAXLAB_ROOT'], 'lab', '00_room_check.ipynb'), as_version=4); "
    "NotebookClient(nb, timeout=900, kernel_name='python3').execute()"
)
# The container's peak memory, its kernel included: cgroup v2's memory.peak, or v1's high-water mark.
PEAK = ["sh", "-c", "cat /sys/fs/cgroup/memory.peak 2>/dev/null || cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes"]


def one_learner(api: HubAPI, engine: Engine, name: str, start: float) -> dict:
    token = api.learner(name)
    api.start(name, token)
    ready = time.monotonic() - start
    ran = engine.exec_in(f"jupyter-{name}", ["python3", "-c", RUN_ROOM_CHECK])
    done = time.monotonic() - start
    peak = engine.exec_in(f"jupyter-{name}", PEAK, timeout=60)
    return {
        "learner": name,
        "ready_s": round(ready, 1),
        "done_s": round(done, 1),
        "passed": ran.returncode == 0,
        "error": (ran.stderr.strip().splitlines() or [""])[-1] if ran.returncode else "",
        "peak_bytes": int(peak.stdout) if peak.returncode == 0 and peak.stdout.strip().isdigit() else None,
    }


def _quietly(stop, name: str) -> None:
    try:
        stop(name)
    except (RuntimeError, OSError):
        pass  # never made, or gone already: the engine's clean-up below covers it


def class_load(engine: Engine, backend: str = "cpu", learners: int = 20) -> dict:
    with tempfile.TemporaryDirectory(prefix="jaxlab-hub-bench-") as tmp:
        port = free_ports(4)
        settings = Settings.at(
            port,
            backend=backend,
            learners=learners,
            learner_memory=GiB // 2,  # the lease is not what is measured here: every learner is seated
        )
        settings = serve.prepare(engine, settings, Path(tmp) / "hub")
        log = (Path(tmp) / "hub.log").open("w")
        proc = serve.start(settings, stdout=log, stderr=log)
        names = [f"learner{i:02d}x{secrets.token_hex(2)}" for i in range(learners)]
        api = HubAPI(f"http://127.0.0.1:{port}", Path(settings.state))
        try:
            if not api.answers(120):
                raise LabError("the hub did not answer in 120 s")
            start = time.monotonic()
            with ThreadPoolExecutor(learners) as pool:  # everyone logs in at once
                rows = list(pool.map(lambda name: one_learner(api, engine, name, start), names))
            total = time.monotonic() - start
        finally:
            # The learners' servers first, through the hub, while it runs: a hub stopping twenty
            # containers on its way out takes longer than a signal's grace.
            with ThreadPoolExecutor(learners) as pool:
                list(pool.map(lambda name: _quietly(api.stop_server, name), names))
            processes.stop(proc, grace=serve.STOP_GRACE)
            log.close()
            for name in names:  # whatever is left of a learner, their volume included
                engine.stop(f"jupyter-{name}")
                engine.remove_volume(f"jaxlab-work-{name}")
    peaks = sorted(r["peak_bytes"] for r in rows if r["peak_bytes"])
    peak = peaks[-1] if peaks else 0
    memory = psutil.virtual_memory().total
    return {
        "learners": learners,
        "passed": sum(r["passed"] for r in rows),
        "all_done_s": round(total, 1),
        "ready_median_s": sorted(r["ready_s"] for r in rows)[len(rows) // 2],
        "peak_per_learner_bytes": peak,
        "peak_median_bytes": peaks[len(peaks) // 2] if peaks else 0,
        "machine_holds": int((memory - HOST_RESERVE_MEMORY) // peak) if peak else None,
        "machine": f"{os.cpu_count()} cores, {memory / GiB:.0f} GiB",
        "rows": rows,
    }
