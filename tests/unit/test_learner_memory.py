"""labkit.hub.measure.Peak: the peak memory of a process tree, which the lease plan's figure for
one learner comes from."""

from __future__ import annotations

import subprocess
import sys

from labkit.hub.measure import Peak

MiB = 1024**2
# A parent that starts a child holding 300 MiB for a moment: the tree's peak, not the parent's.
CHILD = "import time; block = bytearray(300 * 1024 * 1024); time.sleep(1.5)"
PARENT = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {CHILD!r}])"


def test_the_peak_counts_the_whole_process_tree():
    proc = subprocess.Popen([sys.executable, "-c", PARENT])
    with Peak(proc.pid, every=0.05) as peak:
        proc.wait(timeout=60)
    assert peak.bytes >= 300 * MiB
