"""Joining the other processes of a multi-process run, through JAX's own multi-controller runtime.

Every process runs the same program; ``jax.distributed.initialize`` connects them to a coordinator
(process 0) and gives each the global devices. What starts the processes says where the coordinator
is:

- ``invoke lab --processes N`` on one host sets :data:`COORDINATOR`, :data:`PROCESS_ID` and
  :data:`PROCESS_COUNT` in each process's environment;
- Slurm's ``srun``, a Cloud TPU pod slice or a Kubernetes JobSet set their own variables, and JAX
  reads them itself (``jax.distributed.initialize()`` with no arguments).

JAX's own failures here are hard to read: an unreachable coordinator aborts the process after its
timeout with a C++ stack trace, and a port that is taken fails deep in gRPC. So the cheap checks
come first, each a one-line :class:`JoinFailed` within :func:`join_timeout` seconds: the port is
free (process 0), the coordinator answers (the others), and, once joined, the process count is the
one asked for.
"""

from __future__ import annotations

import os
import socket
import time

from .errors import LabError

COORDINATOR = "JAXLAB_COORDINATOR"  # host:port of process 0's coordinator
PROCESS_ID = "JAXLAB_PROCESS_ID"
PROCESS_COUNT = "JAXLAB_PROCESS_COUNT"
JOIN_TIMEOUT = "JAXLAB_JOIN_TIMEOUT"  # seconds to wait for the coordinator and the other processes
DEFAULT_JOIN_TIMEOUT = 60
# A process that stops sending heartbeats for this long is dead to the others, which then stop.
# JAX's default is 100 s; a lab's run should not hang that long after one process was killed.
HEARTBEAT_SECONDS = 20


class JoinFailed(LabError):
    """A process could not join the run's others: one line that says why and what to do."""


def join_timeout() -> int:
    text = os.environ.get(JOIN_TIMEOUT, "")
    try:
        value = int(text) if text else DEFAULT_JOIN_TIMEOUT
    except ValueError:
        value = 0
    if value < 1:
        raise JoinFailed(f"{JOIN_TIMEOUT}={text!r}: give whole seconds, 1 or more")
    return value


def launched_here() -> dict[str, object] | None:
    """The coordinator, process id and count that ``invoke lab --processes`` gave this process,
    or None where a cluster's launcher (or nobody) started it."""
    if COORDINATOR not in os.environ:
        return None
    try:
        return {
            "coordinator_address": os.environ[COORDINATOR],
            "process_id": int(os.environ[PROCESS_ID]),
            "num_processes": int(os.environ[PROCESS_COUNT]),
        }
    except (KeyError, ValueError):
        raise JoinFailed(
            f"{COORDINATOR} is set, but {PROCESS_ID} and {PROCESS_COUNT} are not both whole numbers: "
            f"set all three, or none and start the processes with srun"
        ) from None


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise JoinFailed(f"coordinator address {address!r}: give host:port, e.g. 127.0.0.1:12355")
    return host.strip("[]"), int(port)


def port_free(host: str, port: int) -> bool:
    """Whether a coordinator could listen at ``host:port``. As gRPC binds it: with SO_REUSEADDR, so
    the closed connections of the run's previous coordinator (a notebook's, before the checks')
    do not count, and a listener does."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def wait_for(host: str, port: int, seconds: float) -> bool:
    """Whether something accepts connections at ``host:port`` within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def join(jax, processes: int) -> None:
    """Connect this process to the run's ``processes`` processes (nothing to do for one).

    Call after ``jax_platforms`` is set and before the first device query; then, once JAX has
    started, :func:`check_count`.
    """
    if processes < 1:
        raise JoinFailed(f"processes = {processes}: give 1 or more")
    if processes == 1:
        return
    timeout = join_timeout()
    here = launched_here()
    if here is not None:
        count, pid = here["num_processes"], here["process_id"]
        if count != processes:
            raise JoinFailed(
                f"this notebook asks for {processes} processes, but its launcher started {count}; "
                f"give the same count to both (invoke lab --processes {processes})"
            )
        host, port = split_address(str(here["coordinator_address"]))
        if pid == 0 and not port_free(host, port):
            raise JoinFailed(
                f"process 0 cannot start the coordinator: {host}:{port} is already in use; "
                f"give a free port, or leave it out and one is chosen"
            )
        if pid != 0 and not wait_for(host, port, timeout):
            raise JoinFailed(
                f"process {pid} could not reach the coordinator at {host}:{port} within {timeout} s: "
                f"is process 0 running, and is that address reachable from here?"
            )
        kwargs: dict[str, object] = dict(here)
    else:
        kwargs = {}  # srun, a TPU pod slice, a JobSet: JAX reads its launcher's variables itself
    try:
        jax.distributed.initialize(
            **kwargs, initialization_timeout=timeout, heartbeat_timeout_seconds=HEARTBEAT_SECONDS
        )
    except (RuntimeError, ValueError) as err:  # no launcher found, or the coordination service refused
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise JoinFailed(
            f"could not join {processes} processes: {first} (start them with invoke lab --processes "
            f"{processes}, or srun -n {processes})"
        ) from None


def check_count(jax, processes: int) -> None:
    """Once JAX has started: as many processes joined as were asked for (a launcher that started
    another count, ``srun -n 3`` for a two-process notebook, is refused here)."""
    if jax.process_count() != processes:
        raise JoinFailed(
            f"this notebook asks for {processes} processes, but {jax.process_count()} joined "
            f"(its launcher started another count): give the same count to both"
        )
