"""The README and docs/ stay true: commands they name exist, links resolve, the example config loads."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from bot.cli import build_parser
from bot.config import Settings, load_settings

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


def sourced(path: Path) -> dict[str, str]:
    """What ``set -a && . ./bot.env && set +a`` (README) exports: the file's variables as bash sees them.

    Fails if the shell complains (a value with spaces left unquoted runs its second word as a command).
    """
    script = 'set -a && . "$1" && set +a && env -0'
    done = subprocess.run(["bash", "-c", script, "_", str(path)], env={"PATH": "/usr/bin:/bin"}, capture_output=True)
    assert done.returncode == 0 and done.stderr == b"", done.stderr.decode()
    exported = dict(item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item)
    return {name: exported[name] for name in env_file(path)}


def env_file(path: Path) -> dict[str, str]:
    """What ``docker run --env-file`` (docs/deploy.md) passes: each ``NAME=value`` line as it is, quotes kept."""
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def settings_from(variables: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return load_settings().model_dump(mode="json")


def test_the_example_environment_file_reads_the_same_sourced_and_as_a_docker_env_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    example = ROOT / "bot.env.example"
    by_shell, by_docker = sourced(example), env_file(example)
    assert by_docker["REVEAL_RATE_LIMIT"] == '"10 per minute; 30 per hour"'  # quoted: it holds spaces and ";"
    assert by_shell["REVEAL_RATE_LIMIT"] == "10 per minute; 30 per hour"
    as_sourced = settings_from(by_shell, monkeypatch)
    assert settings_from(by_docker, monkeypatch) == as_sourced
    assert as_sourced["approval_channel_id"] == "C0123456789" and as_sourced["reveal_rate_limit"] == (
        Settings.model_fields["reveal_rate_limit"].default
    )
    assert as_sourced["trusted_proxy_count"] == 1  # docs/deploy.md: "usually 1"
    assert as_sourced["slack_app_token"] is None  # HTTP mode


def test_the_example_environment_file_leaves_the_container_its_own_settings() -> None:
    # The image sets DATABASE_PATH (its volume), PORT and LOG_FORMAT=json; --env-file bot.env must not undo them.
    instructions = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").split("\nFROM ")[-1].splitlines()
    image = dict(
        pair.split("=", 1)
        for line in instructions
        if line.startswith("ENV ")
        for pair in line.split()[1:]
        if "=" in pair
    )
    assert {"DATABASE_PATH", "PORT", "LOG_FORMAT"} <= set(image), image
    example = env_file(ROOT / "bot.env.example")
    assert {name: value for name, value in example.items() if name in image and image[name] != value} == {}


def test_the_readme_configuration_table_lists_every_setting_and_no_other() -> None:
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
