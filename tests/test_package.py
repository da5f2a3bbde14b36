"""The package an operator installs works outside the source tree.

The wheel is built the way the Dockerfile builds it: from exactly the files its first stage copies
(with .dockerignore applied), by the command its ``RUN`` line gives, with pip's build isolation.
It is installed into a fresh virtualenv with its dependencies, as the image's second stage does,
and run from an empty folder: ``manifest``, ``policy``, ``check`` against moto server and the
Slack stand-in, and ``serve`` up to ``/healthz`` and the reveal page with its static files. No
container engine can be had on these machines; this is what the image would install and run.
"""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from bot.sandbox.processes import BotProcess, MotoServer, http
from bot.sandbox.slack_standin import SlackStandIn
from bot.slack import manifest
from tests.conftest import APPROVAL_CHANNEL, APPROVER, BOT_TOKEN

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e  # builds, installs and runs the package as processes (and reaches PyPI)


def dockerfile_stage(name: str) -> list[str]:
    """The instructions of the Dockerfile stage ``FROM … AS name``, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    start = next(i for i, line in enumerate(lines) if line.startswith("FROM ") and line.endswith(f" AS {name}"))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("FROM ")), len(lines))
    return lines[start + 1 : end]


def dockerignored(relative: str) -> bool:
    patterns = [p for p in (ROOT / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    parts = relative.split("/")
    return any(
        fnmatch.fnmatch(relative, p) or any(fnmatch.fnmatch(part, p.removeprefix("**/")) for part in parts)
        for p in patterns
    )


def copy_build_context(stage: list[str], into: Path) -> None:
    """Do the stage's ``COPY`` lines from the repository into ``into`` (its WORKDIR)."""
    for line in stage:
        if not line.startswith("COPY "):
            continue
        *sources, destination = shlex.split(line)[1:]
        for source in sources:
            target = into / destination / source if destination.endswith("/") else into / destination
            if (ROOT / source).is_dir():
                shutil.copytree(
                    ROOT / source,
                    target,
                    ignore=lambda folder, names: [
                        n for n in names if dockerignored(str((Path(folder) / n).relative_to(ROOT)))
                    ],
                )
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(ROOT / source, target)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    stage = dockerfile_stage("wheel")
    src, out = tmp_path_factory.mktemp("context"), tmp_path_factory.mktemp("wheels")
    copy_build_context(stage, src)
    (run,) = [line.removeprefix("RUN ") for line in stage if line.startswith("RUN ")]
    argv = [
        sys.executable if word == "python" else str(out) if word == "/wheels" else word for word in shlex.split(run)
    ]
    assert argv[1:4] == ["-m", "pip", "wheel"] and "--no-deps" in argv and "--no-build-isolation" not in argv
    built = subprocess.run(argv, cwd=src, capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout + built.stderr
    (found,) = out.glob("iam_user_bot-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with the wheel and its dependencies (the image's second stage); its bin/."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return venv / "bin"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """An empty folder away from the source tree, where the installed commands run."""
    folder = tmp_path / "operator"
    folder.mkdir()
    assert ROOT not in folder.parents
    return folder


@pytest.fixture
def standin() -> Iterator[SlackStandIn]:
    with SlackStandIn(bot_token=BOT_TOKEN) as slack:
        slack.add_user(APPROVER, name="alex.approver", email="alex@example.com")
        yield slack


def clean_environment(extra: dict[str, str]) -> dict[str, str]:
    """Only what an operator's shell would have, plus ``extra``: no PYTHONPATH, no virtualenv."""
    return {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), "LANG": "C.UTF-8", **extra}


def run(bin_dir: Path, args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / "iam-user-bot"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_wheel_carries_the_manifest_the_reveal_page_and_the_policies(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert archive.read("bot/slack/manifest.yml") == (ROOT / "manifest.yml").read_bytes()
        for page in ("credentials.html", "reveal.css", "reveal.js"):
            assert (
                archive.read(f"bot/credentials/static/{page}") == (ROOT / "bot/credentials/static" / page).read_bytes()
            )
        for policy in ("require-mfa.json", "self-manage-credentials.json"):
            assert archive.read(f"bot/policies/{policy}") == (ROOT / "bot/policies" / policy).read_bytes()
    assert "handlers/__init__.py" in names and "bot/cli.py" in names
    assert not [n for n in names if n.startswith("tests/") or "__pycache__" in n]


def test_the_installed_package_runs_from_outside_the_source_tree(
    installed: Path, outside: Path, standin: SlackStandIn, moto_server: MotoServer
) -> None:
    env = clean_environment(
        {
            **moto_server.client_env(),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": "signing-secret-for-the-package-test",
            "SLACK_API_URL": standin.base_url,
            "APPROVAL_CHANNEL_ID": APPROVAL_CHANNEL,
            "APPROVER_USER_IDS": APPROVER,
            "PUBLIC_BASE_URL": "https://bot.example.com",
            "DATABASE_PATH": str(outside / "iam-user-bot.db"),
            "AWS_CONFIG_FILE": str(outside / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(outside / "no-aws-credentials"),
        }
    )
    where = subprocess.run(
        [str(installed / "python"), "-c", "import bot; print(bot.__file__)"], cwd=outside, env=env, capture_output=True
    )
    assert Path(where.stdout.decode().strip()).is_relative_to(installed.parent), where

    shown = run(installed, ["manifest", "--socket-mode"], outside, env)
    assert shown.returncode == 0, shown.stderr
    assert yaml.safe_load(shown.stdout) == manifest.render(socket_mode=True)
    policy = run(installed, ["policy", "require-mfa"], outside, env)
    assert json.loads(policy.stdout) == json.loads((ROOT / "bot/policies/require-mfa.json").read_text())

    checked = run(installed, ["check"], outside, env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert [line.split(":")[0] for line in checked.stdout.splitlines()] == [
        "ok   configuration",
        "ok   database",
        "ok   public url",
        "ok   slack",
        "ok   slack scopes",  # the stand-in names no scopes: compared with nothing, said so
        "ok   slack people",
        "ok   aws identity",
        "ok   iam permissions",
        "warn iam scoping",  # moto has no iam:SimulatePrincipalPolicy: said so, exit status 0
        "ok   bot policies",  # compared with the documents the wheel carries
    ]

    bot = BotProcess(env=env, log_path=outside / "bot.log", command=(str(installed / "iam-user-bot"),), cwd=outside)
    with bot:
        health = http("GET", f"{bot.url}/healthz")
        assert health.status == 200 and health.json()["ok"] is True
        page = http("GET", f"{bot.url}/credentials/{'A' * 24}")
        assert page.status == 200 and page.body == (ROOT / "bot/credentials/static/credentials.html").read_bytes()
        script = http("GET", f"{bot.url}/static/reveal.js")
        assert script.status == 200 and script.body == (ROOT / "bot/credentials/static/reveal.js").read_bytes()
    assert "Traceback" not in bot.log_text()
