"""What `invoke hub` tells the hub's config (deploy/jupyterhub_config.py), through JAXLAB_HUB_*
variables, and the learners' seats, which the config's spawner leases by."""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import LabError
from ..outdir import replace_file

PREFIX = "JAXLAB_HUB_"
SEATS = "seats.json"


@dataclass(frozen=True)
class Settings:
    backend: str
    image: str
    state: str  # the hub's own folder: its database, secrets and the learners' seats
    proxy: str  # configurable-http-proxy's executable
    bind: str = "127.0.0.1"
    port: int = 8000
    hub_ip: str = "127.0.0.1"  # where the learners' containers reach the hub's API
    network: str = ""  # the engine network the learners' containers join ("" for the engine's default)
    # The ports next to the learners' port: the proxy's API, the hub's API, the class page.
    proxy_api_port: int = 8001
    hub_port: int = 8002
    class_port: int = 8003
    instructor: str = "instructor"
    password_file: str = ""
    admin_password_file: str = ""
    api_token_file: str = ""
    learners: int = 20
    learners_list: tuple[str, ...] = ()
    learner_memory: int = 1024**3
    share: bool = False
    idle_timeout: int = 3600  # seconds without activity before a learner's server is stopped
    max_age: int = 0  # seconds a server may run at most (0: no limit)
    cull_every: int = 60

    @classmethod
    def at(cls, port: int, **given: Any) -> Settings:
        """Settings of a hub on ``port``: its proxy's API, its own API and the class page take the
        three ports above; the image, folder and proxy are filled in by serve.prepare."""
        return cls(
            image="",
            state="",
            proxy="",
            port=port,
            proxy_api_port=port + 1,
            hub_port=port + 2,
            class_port=port + 3,
            **given,
        )

    def environment(self) -> dict[str, str]:
        """The variables that carry these settings to the hub's config."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[PREFIX + f.name.upper()] = (
                ",".join(value)
                if isinstance(value, tuple)
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
        return out


def from_environment(env: Mapping[str, str] | None = None) -> Settings:
    source: Mapping[str, str] = os.environ if env is None else env
    given: dict[str, Any] = {}
    for f in fields(Settings):
        key = PREFIX + f.name.upper()
        if key not in source:
            continue
        raw = source[key]
        kind = str(f.type)
        if kind == "int":
            given[f.name] = int(raw)
        elif kind == "bool":
            given[f.name] = raw == "true"
        elif kind.startswith("tuple"):
            given[f.name] = tuple(name for name in raw.split(",") if name)
        else:
            given[f.name] = raw
    try:
        return Settings(**given)
    except TypeError as err:
        raise LabError(f"the hub's settings are incomplete ({err}); start it with invoke hub") from None


def seat(state: Path, learner: str) -> int:
    """The learner's seat (from 1): the first free one at their first start, theirs from then on."""
    path = state / SEATS
    seats: dict[str, int] = json.loads(path.read_text()) if path.is_file() else {}
    if learner not in seats:
        seats[learner] = len(seats) + 1
        replace_file(path, json.dumps(seats, indent=1, sort_keys=True).encode())
    return seats[learner]


def tpu_devices(chips: tuple[int, ...]) -> list[str]:
    """The device files of ``chips``: /dev/accelN up to TPU v4, /dev/vfio/N (and vfio's own) after."""
    if glob.glob("/dev/accel[0-9]*"):
        return [f"/dev/accel{chip}:/dev/accel{chip}" for chip in chips]
    return ["/dev/vfio/vfio:/dev/vfio/vfio", *(f"/dev/vfio/{chip}:/dev/vfio/{chip}" for chip in chips)]
