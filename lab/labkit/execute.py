"""Execute one notebook with papermill in this process: the runner starts one of these per
notebook, each with its own kernel, and reads the status file it leaves.

    python -m labkit.execute IN.ipynb OUT.ipynb STATUS.json '{"seed": 1}' [CELL_TIMEOUT]
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import nbformat
import papermill
from nbclient.exceptions import CellTimeoutError
from papermill.exceptions import PapermillExecutionError

from . import guest
from .params import is_guest


def _failing_cell(source: Path, cell_source: str) -> tuple[int | None, str]:
    """The failing cell's 1-based position in the source notebook (papermill's index counts
    its injected cell) and its first non-blank line."""
    cells = nbformat.read(source, as_version=4).cells
    position = next((i + 1 for i, c in enumerate(cells) if c.source == cell_source), None)
    first_line = next((ln for ln in cell_source.splitlines() if ln.strip()), "")
    return position, first_line


def _timed_out_cell(source: Path, message: str) -> tuple[int | None, str]:
    """nbclient's timeout names the cell only by a preview of its source, between dashed lines."""
    parts = message.split("-------------------\n")
    preview = parts[1].strip() if len(parts) > 2 else ""
    cells = nbformat.read(source, as_version=4).cells
    match = next((c.source for c in cells if preview and c.source.strip().startswith(preview.splitlines()[0])), "")
    return _failing_cell(source, match) if match else (None, preview.splitlines()[0] if preview else "")


def execute(source: Path, output: Path, parameters: dict, cell_timeout: float | None) -> dict[str, object]:
    start = time.monotonic()
    status: dict[str, object] = {"status": "passed"}
    try:
        papermill.execute_notebook(
            str(source),
            str(output),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(output.parent),
            progress_bar=False,
            log_output=False,
            execution_timeout=cell_timeout,
        )
    except CellTimeoutError as err:
        position, first_line = _timed_out_cell(source, str(err))
        status = {
            "status": "timeout",
            "cell": position,
            "cell_source": first_line,
            "error": f"the cell ran longer than --cell-timeout {cell_timeout:g} s; kernel stopped",
        }
    except PapermillExecutionError as err:
        position, first_line = _failing_cell(source, err.source)
        status = {
            "status": "failed",
            "cell": position,
            "cell_source": first_line,
            "error": f"{err.ename}: {err.evalue}".strip(),
        }
    except Exception as err:  # kernel died, timeout, unreadable notebook: still a clear status
        status = {"status": "failed", "cell": None, "error": f"{type(err).__name__}: {err}".strip()}
    status["seconds"] = round(time.monotonic() - start, 2)
    return status


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    # The runner stops a worker with SIGTERM; turning it into an exception lets papermill's
    # own clean-up shut the kernel down instead of leaving it behind.
    signal.signal(signal.SIGTERM, _interrupt)
    source, output, status_file, params = Path(argv[0]), Path(argv[1]), Path(argv[2]), json.loads(argv[3])
    cell_timeout = float(argv[4]) if len(argv) > 4 else None
    if is_guest(source):  # written elsewhere: no parameters to inject, the backend by environment
        status = guest.run(source, output, params["backend"], Path(params["results_dir"]), cell_timeout)
    else:
        status = execute(source, output, params, cell_timeout)
    status_file.write_text(json.dumps(status))
    return 0 if status["status"] == "passed" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
