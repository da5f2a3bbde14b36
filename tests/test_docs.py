"""The README and docs/ stay true: commands they name exist, links resolve, the example config loads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.cli import build_parser
from bot.config import load_settings

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CI_TEST_LINE = "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/python -m pytest -q"


def test_readme_keeps_the_demo_first_and_the_exact_test_line_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.S)
    commands = [line for line in blocks[0].splitlines() if line and not line.startswith("#")]
    assert commands == ["python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/iam-user-bot demo"]
    assert CI_TEST_LINE in blocks[1].splitlines()
    assert CI_TEST_LINE in (ROOT / ".ci" / "run").read_text()


def test_every_subcommand_the_docs_name_exists() -> None:
    subcommands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    # "iam-user-bot <word>"; not "docker exec iam-user-bot python …", where it names the container.
    named = {m for doc in DOCS for m in re.findall(r"(?<!exec )iam-user-bot ([a-z][a-z-]*[a-z])\b", doc.read_text())}
    assert named and named <= subcommands, sorted(named - subcommands)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_relative_links_resolve(doc: Path) -> None:
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
        assert (doc.parent / target).exists(), f"{doc.name} links to missing {target}"


def test_the_example_environment_file_is_a_valid_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for line in (ROOT / "bot.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            assert name == name.strip() and value == value.strip() and '"' not in value, line
            monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.approval_channel_id == "C0123456789" and not settings.socket_mode


def test_the_readme_configuration_table_lists_every_setting_and_no_other() -> None:
    from bot.config import Settings

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Configuration") :].split("\n## ", 1)[0]
    documented = {
        name
        for row in table.splitlines()
        if row.startswith("| `")
        for name in re.findall(r"`([A-Z_]+)`", row.split("|")[1])
    }
    documented.discard("AWS_")
    assert documented == {name.upper() for name in Settings.model_fields}, documented ^ {
        n.upper() for n in Settings.model_fields
    }


def test_every_subcommand_is_in_the_readme_commands_list() -> None:
    readme = (ROOT / "README.md").read_text()
    commands = readme[readme.index("## Commands") :].split("\n## ", 1)[0]
    subcommands = set(build_parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert {s for s in subcommands if f"`iam-user-bot {s}" not in commands} == set()


def test_deploy_guide_quotes_the_procfile_as_it_is() -> None:
    procfile = (ROOT / "Procfile").read_text().strip()
    assert procfile in (ROOT / "docs" / "deploy.md").read_text()


def test_every_test_the_docs_name_exists() -> None:
    """README's and docs/'s security claims point at tests (``tests/…py::name``); each must exist."""
    named = {m for doc in DOCS for m in re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", doc.read_text())}
    assert len(named) >= 20
    missing = [
        f"{path}::{name}"
        for path, name in sorted(named)
        if not (ROOT / path).exists() or not re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M)
    ]
    assert missing == []
