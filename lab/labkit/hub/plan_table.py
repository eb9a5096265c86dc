"""A lease plan as an organiser reads it: the room, one row per kind of seat, and what is refused."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .leases import GiB, LeasePlan


def room_line(p: LeasePlan) -> str:
    room = p.room
    parts = [f"{room.cores} cores", f"{room.memory / GiB:.0f} GiB memory"]
    if room.gpus:
        names = sorted({g.name for g in room.gpus})
        mig = sum(len(g.mig) for g in room.gpus)
        parts.append(
            f"{len(room.gpus)} × {', '.join(names)} ({room.gpus[0].memory / GiB:.0f} GiB)"
            + (f", {mig} MIG instances" if mig else "")
        )
    if room.tpu_chips:
        parts.append(f"{room.tpu_chips} TPU chips")
    return f"backend {room.backend}: " + ", ".join(parts)


def print_plan(p: LeasePlan, console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"[bold]{escape(room_line(p))}[/] · a class of {p.learners}")
    table = Table(title=f"{len(p.leases)} of {p.learners} learners seated")
    for column in ("learner", "device", "cores", "memory", "environment"):
        table.add_column(column, overflow="fold")
    for lease in p.leases:
        env = " ".join(f"{k}={v}" for k, v in lease.env.items()) or "—"
        table.add_row(
            str(lease.learner), escape(lease.device), f"{lease.cpus:g}", f"{lease.memory / GiB:.1f} GiB", escape(env)
        )
    console.print(table)
    for note in p.notes:
        console.print(f"note: {escape(note)}")
    if p.refused:
        console.print(f"[bold red]refused: {p.refused} learners[/] ({escape(p.why_refused)})")
