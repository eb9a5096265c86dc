"""JupyterHub's REST API as an organiser's script uses it: make learners and their tokens, start and
stop their servers, and call a learner's server through the hub's proxy."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

SERVER_START_S = 240.0  # a learner's container and its single-user server, on two cores


class HubAPI:
    def __init__(self, base: str, folder: Path):
        self.base, self.folder = base, folder

    @property
    def token(self) -> str:
        """The hub's own API token, which `invoke hub` keeps in its folder (made as it starts)."""
        return (self.folder / "api_token").read_text().strip()

    def call(
        self, method: str, path: str, token: str | None = None, body: Any = None, at: str = "/hub/api"
    ) -> tuple[int, Any]:
        """(HTTP status, the JSON or text answer) of ``method base+at+path`` with ``token``
        (default: the hub's own)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base}{at}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {token or self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                text = response.read().decode()
                return response.status, json.loads(text) if text.strip().startswith(("{", "[")) else text
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")

    def answers(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.base}/hub/api/", timeout=5)
                return True
            except OSError:
                time.sleep(1)
        return False

    def learner(self, name: str) -> str:
        """Make the learner and a token of theirs, as an organiser does; the token."""
        status, answer = self.call("POST", f"/users/{name}")
        if status not in (201, 409):
            raise RuntimeError(f"making learner {name}: {status} {answer}")
        status, made = self.call("POST", f"/users/{name}/tokens", body={"note": "jaxlab"})
        if status != 201:
            raise RuntimeError(f"a token for {name}: {status} {made}")
        return made["token"]

    def start(self, name: str, token: str, timeout: float = SERVER_START_S) -> None:
        """Start the learner's server with their own token, and wait until the hub says it is ready."""
        status, body = self.call("POST", f"/users/{name}/server", token=token)
        if status not in (201, 202):
            raise RuntimeError(f"starting {name}'s server: {status} {body}")
        deadline = time.monotonic() + timeout
        user: Any = {}
        while time.monotonic() < deadline:
            status, user = self.call("GET", f"/users/{name}")
            if status == 200 and (user.get("servers", {}).get("", {}) or {}).get("ready"):
                return
            time.sleep(1)
        raise RuntimeError(f"{name}'s server did not start in {timeout:.0f} s: {user}")

    def stop_server(self, name: str) -> None:
        status, body = self.call("DELETE", f"/users/{name}/server")
        if status not in (202, 204):
            raise RuntimeError(f"stopping {name}'s server: {status} {body}")
        if not self.wait_stopped(name, 120):
            raise RuntimeError(f"{name}'s server did not stop in 120 s")

    def wait_stopped(self, name: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            status, user = self.call("GET", f"/users/{name}")
            if status == 200 and not user.get("servers"):
                return True
            time.sleep(2)
        return False
