"""One writer at a time, for real: processes that take the lock over and over never hold it
together (a lock file removed on release once let two holders lock different inodes), and no
lock file is left behind."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

from labkit import outdir


def hold_repeatedly(out: str, log: str, until: float) -> tuple[int, int]:
    from labkit.errors import UsageError

    held = tries = 0
    while time.monotonic() < until:
        tries += 1
        try:
            with outdir.locked(Path(out)):
                fd = os.open(log, os.O_WRONLY | os.O_APPEND)
                os.write(fd, f"+{os.getpid()}\n".encode())
                os.write(fd, f"-{os.getpid()}\n".encode())
                os.close(fd)
                held += 1
        except UsageError:
            pass  # refused: another holds it
    return held, tries


def test_holders_never_overlap(tmp_path):
    out, log = tmp_path / "run", tmp_path / "log"
    log.touch()
    until = time.monotonic() + 4  # spawned processes start in about a second
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        counts = pool.starmap(hold_repeatedly, [(str(out), str(log), until)] * 4)
    assert sum(held for held, _ in counts) > 100 and sum(tries for _, tries in counts) >= 10_000, counts
    events = log.read_text().split()
    # Every hold is "+pid" then "-pid" with nothing between: another holder would interleave.
    assert all(events[i][1:] == events[i + 1][1:] and events[i][0] == "+" for i in range(0, len(events), 2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log"]
