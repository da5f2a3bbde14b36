"""The structure holds: imports point down the layers, SQL lives only in the storage package,
boto3 only in the AWS package, Slack Web API calls only in the Slack package, no module passes
400 lines, and every step kind is handled in every table (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.aws.steps import RUNNERS
from bot.domain.plan import STEP_KINDS, StepKind
from bot.domain.plan_text import CLI_COMMANDS, REVIEW_HEADINGS

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for d in ("bot", "handlers") for p in (ROOT / d).rglob("*.py"))

# Layers, bottom up (docs/architecture.md). A module may import its own package and anything in a
# lower layer; across packages of one layer only the pairs in SIDEWAYS.
LAYERS: list[set[str]] = [
    {"bot", "bot.domain"},
    {"bot.config", "bot.logs"},
    {"bot.storage", "bot.aws", "bot.slack"},
    {"bot.ops"},
    {"bot.credentials"},
    {"bot.provisioning"},
    {"bot.lifecycle"},  # starts from approval (an approved removal), delivers through credentials
    {"bot.approval"},
    {"bot.wizard", "bot.selfservice"},
    {"bot.services", "bot.web"},
    {"handlers"},
    {"bot.app"},
    {"bot.serverless"},
    {"bot.sandbox"},
    {"bot.cli"},
]
SIDEWAYS = {("bot.slack", "bot.storage")}  # the Events API retry ledger keeps event ids in the store
RANK = {package: rank for rank, layer in enumerate(LAYERS) for package in layer}


def package_of(module: str) -> str | None:
    """The layer package a dotted module name belongs to (``bot.aws.iam`` → ``bot.aws``)."""
    parts = module.split(".")
    for length in (2, 1):
        name = ".".join(parts[:length])
        if name in RANK:
            return name
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[str, int]]:
    """``(imported module, line)`` of every import in ``path``, TYPE_CHECKING ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [(node.module, node.lineno)]
            found += [(f"{node.module}.{alias.name}", node.lineno) for alias in node.names]
    return found


def test_every_module_is_in_a_layer() -> None:
    assert [module_name(p) for p in SOURCES if package_of(module_name(p)) is None] == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path: Path) -> None:
    own = package_of(module_name(path))
    assert own is not None
    upward = []
    for imported, line in imports(path):
        target = package_of(imported)
        if target is None or target == own:
            continue
        if RANK[target] > RANK[own] or (RANK[target] == RANK[own] and (own, target) not in SIDEWAYS):
            upward.append(f"line {line}: {imported} ({target} is not below {own})")
    assert upward == []


def test_dynamodb_clients_only_in_the_storage_package() -> None:
    outside = [p for p in SOURCES if not {"storage", "sandbox"} & set(p.relative_to(ROOT).parts)]
    client = re.compile(r"""(client|resource)\(\s*["']dynamodb["']""")
    assert [str(p.relative_to(ROOT)) for p in outside if client.search(p.read_text())] == []


def test_sql_and_sqlite_only_in_the_storage_package() -> None:
    sql = re.compile(r"\b(SELECT .+ FROM|INSERT (OR \w+ )?INTO|UPDATE \w+ SET|DELETE FROM|CREATE (TABLE|INDEX))\b")
    outside = [p for p in SOURCES if "storage" not in p.relative_to(ROOT).parts]
    offenders = [str(p) for p in outside if sql.search(p.read_text())]
    offenders += [
        f"{p}: imports {m}" for p in outside for m, _ in imports(p) if m.split(".")[0] in ("sqlite3", "sqlite_utils")
    ]
    assert offenders == []


def test_boto3_only_in_the_aws_package() -> None:
    # bot/sandbox runs moto server and gives tests their own clients: not the bot. The DynamoDB
    # store is storage: its calls belong with the other stores' (design.md, "storage").
    outside = [
        p
        for p in SOURCES
        if not {"aws", "sandbox"} & set(p.relative_to(ROOT).parts) and "dynamodb" not in p.relative_to(ROOT).parts
    ]
    offenders = [f"{p}: {m}" for p in outside for m, _ in imports(p) if m.split(".")[0] in ("boto3", "botocore")]
    assert offenders == []


def test_slack_web_api_calls_only_in_the_slack_package() -> None:
    methods = {name for name in vars(WebClient) if not name.startswith("_")}
    outside = [p for p in SOURCES if not {"slack", "sandbox"} & set(p.relative_to(ROOT).parts)]
    calls = []
    for path in outside:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in methods:
                calls.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.func.attr}")
    assert calls == []


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_passes_400_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 400


@pytest.mark.parametrize(
    "table",
    [STEP_KINDS, RUNNERS, CLI_COMMANDS, REVIEW_HEADINGS],
    ids=["plan rules", "runner", "CLI preview", "review headings"],
)
def test_every_step_kind_is_in_every_table(table) -> None:
    assert set(table) == set(StepKind)
