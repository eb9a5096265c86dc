"""deploy/z2jh-values.yaml as KubeSpawner settings, the way the Zero to JupyterHub chart's own hub
config maps the ``singleuser`` values it uses, so each profile's pod can be rendered offline and
checked (no cluster is reachable here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .. import paths

VALUES = paths.ROOT / "deploy" / "z2jh-values.yaml"


def values(path: Path = VALUES) -> dict:
    return yaml.safe_load(path.read_text())


def spawner_settings(chart_values: dict) -> dict[str, Any]:
    """KubeSpawner's traits from the chart's ``singleuser`` values (the keys this lab sets)."""
    single = chart_values["singleuser"]
    image = single["image"]
    out: dict[str, Any] = {
        "image": f"{image['name']}:{image['tag']}",
        "uid": single["uid"],
        "fs_gid": single["fsGid"],
        "cmd": single["cmd"],
        "default_url": single["defaultUrl"],
        "mem_guarantee": single["memory"]["guarantee"],
        "mem_limit": single["memory"]["limit"],
        "cpu_guarantee": float(single["cpu"]["guarantee"]),
        "cpu_limit": float(single["cpu"]["limit"]),
        "profile_list": single["profileList"],
    }
    storage = single["storage"]
    if storage["type"] == "dynamic":  # a claim per learner, as the chart makes it
        volume = "volume-{username}{servername}"
        out.update(
            pvc_name_template="claim-{username}{servername}",
            storage_capacity=storage["capacity"],
            storage_pvc_ensure=True,
            volumes=[{"name": volume, "persistentVolumeClaim": {"claimName": "{pvc_name}"}}],
            volume_mounts=[{"mountPath": storage["homeMountPath"], "name": volume}],
        )
    return out
