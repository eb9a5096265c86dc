"""`invoke lint` (CI runs it) can run wherever the README's install ran: every hook of
.pre-commit-config.yaml is a tool the dev extra puts beside this Python, never one fetched
from elsewhere."""

import sys
from pathlib import Path

import yaml

from labkit import paths


def test_every_lint_hook_is_a_local_tool_of_the_dev_extra():
    config = yaml.safe_load((paths.ROOT / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    hooks = config["repos"][0]["hooks"]
    assert {h["id"] for h in hooks} >= {"ruff", "ruff-format", "mypy", "hadolint", "shellcheck", "sync"}
    for hook in hooks:
        assert hook["language"] == "system", hook["id"]
        tool = hook["entry"].split()[0]
        assert tool == "python" or (Path(sys.executable).parent / tool).exists(), (
            f"hook {hook['id']}: {tool} is not installed beside this Python; add it to the dev extra"
        )
    # Lint never rewrites a file: `invoke lint` is listed among the commands that write nothing.
    assert all("--check" in h["entry"] for h in hooks if h["id"].startswith("ruff-format"))
