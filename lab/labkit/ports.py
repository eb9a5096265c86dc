"""Free ports on 127.0.0.1, for what the lab starts there: a class's hub, the coordinator of a
multi-process run, the learner benchmark's JupyterLab."""

from __future__ import annotations

import socket

from .errors import LabError


def free_ports(count: int = 1) -> int:
    """A port with ``count`` free ports from it on 127.0.0.1 (a hub takes four in a row, a
    coordinator or a benchmark's JupyterLab one)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        held: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                held.append(socket.socket())
                held[-1].bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in held:
                sock.close()
    raise LabError(f"no {count} free ports in a row on 127.0.0.1")
