"""The room decides the device: a handout opened by hand starts JAX on the backend its image or
environment names ($INVOKE_JAXLAB_BACKEND, which each image sets), or refuses in one line where
that device is missing; never the CPU in a GPU or TPU room. Only a backend papermill injects (the
lab's --backend) overrides the room's."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from labkit import BACKENDS, handouts, paths
from labkit.backends import BACKEND_VARIABLE

pytestmark = pytest.mark.slow
ACCELERATORS = [name for name, b in BACKENDS.items() if b.platform != "cpu"]


def first_cells(injected: str | None = None):
    """Handout 01 up to labkit.start and its first printed line, as a learner opens it."""
    nb = handouts.learner_copy(next(p for p in paths.notebook_paths() if p.stem.startswith("01_")))
    start = next(i for i, c in enumerate(nb.cells) if "labkit.start(" in c.source)
    nb.cells = nb.cells[: start + 1]
    if injected is not None:  # what papermill adds after the parameters cell
        params = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
        nb.cells.insert(params + 1, nbformat.v4.new_code_cell(f"backend = {injected!r}"))
    NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True).execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    return code[-1].outputs


def shown(outputs) -> str:
    return "".join(o.get("text", "") + "".join(o.get("traceback", [])) for o in outputs)


@pytest.mark.parametrize("name", ACCELERATORS)
def test_a_handout_in_an_accelerator_room_without_its_device_refuses_in_one_line(monkeypatch, name):
    monkeypatch.setenv(BACKEND_VARIABLE, name)
    outputs = first_cells()
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert len(errors) == 1, shown(outputs)
    text = shown(outputs)
    assert len(text.strip().splitlines()) == 1, text  # one line, no traceback
    assert f"backend '{name}' asked for" in text
    assert "'cpu'" not in text and "on cpu" not in text  # never started on the CPU


def test_a_handout_in_a_cpu_room_or_none_starts_on_the_cpu(monkeypatch):
    monkeypatch.delenv(BACKEND_VARIABLE, raising=False)
    assert "on 'cpu'" in shown(first_cells())


@pytest.mark.parametrize("name", ACCELERATORS)
def test_the_labs_injected_backend_overrides_the_rooms(monkeypatch, name):
    monkeypatch.setenv(BACKEND_VARIABLE, name)
    assert "on 'cpu'" in shown(first_cells(injected="cpu"))
