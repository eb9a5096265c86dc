"""What one learner costs the machine: the peak memory of a JupyterLab server and of the kernel of
the heaviest notebook, measured, so the lease plan never guesses it.

Each process's resident memory is sampled while it works; the peak of the kernel's process tree
and the server's settled size are what one learner's seat must hold.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import platform
import secrets
import subprocess
import sys
import threading
import time

import nbformat
import psutil
from nbclient import NotebookClient

from .. import paths, processes
from ..errors import LabError
from ..ports import free_ports
from ..results import write_json
from .leases import MEASURED_HERE


class Peak:
    """The largest resident memory of a process tree, sampled every ``every`` seconds."""

    def __init__(self, pid: int, every: float = 0.05):
        self.pid, self.every, self.bytes = pid, every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                root = psutil.Process(self.pid)
                tree = [root, *root.children(recursive=True)]
                self.bytes = max(self.bytes, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            self._stop.wait(self.every)


def kernel_peak(backend: str, notebook: str) -> int:
    """Peak bytes of a kernel that runs ``notebook`` on ``backend`` at full size."""
    nb = nbformat.read(paths.NOTEBOOKS / f"{notebook}.ipynb", as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(f"backend = {backend!r}"))
    client = NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(paths.NOTEBOOKS)}}
    )
    before = {child.pid for child in psutil.Process().children()}
    with client.setup_kernel():
        started = [child.pid for child in psutil.Process().children() if child.pid not in before]
        if len(started) != 1:
            raise LabError(f"expected one kernel process to measure, found {len(started)}")
        with Peak(started[0]) as peak:
            for index, cell in enumerate(nb.cells):
                client.execute_cell(cell, index)
    return peak.bytes


def server_settled(seconds: float = 20) -> int:
    """Bytes of an idle JupyterLab server, after it answers and settles."""
    if importlib.util.find_spec("jupyterlab") is None:
        raise LabError('JupyterLab is not installed here: pip install -e ".[jupyter]" (the images have it)')
    port = free_ports()
    token = secrets.token_hex(16)
    root = ["--allow-root"] if os.geteuid() == 0 else []  # CI and some VMs run as root; the images never do
    proc = processes.start(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--ServerApp.port={port}",
            "--ServerApp.ip=127.0.0.1",
            *root,
        ],
        env={**os.environ, "JUPYTER_TOKEN": token},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with Peak(proc.pid) as peak:
            time.sleep(seconds)
        if proc.poll() is not None:
            raise LabError(f"JupyterLab exited with code {proc.returncode} while it was measured")
        return peak.bytes
    finally:
        processes.stop(proc)


def learner(backend: str = "cpu") -> dict:
    """One learner's measured memory, written where the lease plan reads it (out/bench/learner.json)."""
    peaks = {nb.stem: kernel_peak(backend, nb.stem) for nb in paths.notebook_paths()}
    heaviest = max(peaks, key=peaks.__getitem__)
    kernel, server = peaks[heaviest], server_settled()
    figures = {
        "backend": backend,
        "kernel_peak_bytes": kernel,
        "heaviest_notebook": heaviest,
        "kernel_peaks_bytes": peaks,
        "server_bytes": server,
        "learner_memory_bytes": kernel + server,
        "measured": dt.date.today().isoformat(),
        "machine": f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 1024**3:.0f} GiB, {platform.machine()}",
        "how": "peak resident memory of the heaviest notebook's kernel at full size, and of an idle JupyterLab",
    }
    MEASURED_HERE.parent.mkdir(parents=True, exist_ok=True)
    write_json(MEASURED_HERE, figures)
    return figures
