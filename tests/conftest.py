"""Shared fixtures: moto server, the Slack stand-in, and the bot as a real server process."""

from __future__ import annotations

import contextlib
import json
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.sandbox import moto_iam
from bot.sandbox.processes import BotProcess, MotoServer
from bot.sandbox.slack_standin import SlackStandIn
from bot.sandbox.slack_user import SlackUser
from bot.storage.base import Store
from bot.storage.dynamodb import DynamoStore
from bot.storage.dynamodb.schema import create_table
from bot.storage.dynamodb.table import Table
from bot.storage.sqlite import SqliteStore

# In-process moto (mock_aws) gets the same closer-to-IAM behaviour as the tests' moto server
# (service-specific credentials, a DeleteUser that refuses while anything is left).
moto_iam.install()

REQUESTER = "U0REQUEST1"
APPROVER = "U0APPROVE1"
SECOND_APPROVER = "U0APPROVE2"
RECIPIENT = "U0NEWHIRE1"
STRANGER = "U0STRANGE1"
APPROVAL_CHANNEL = "C0APPROVALS"
BOT_TOKEN = "xoxb-standin-0000000000-test"


# Fixtures that need a server process (e2e: the bot, moto server for IAM) or a browser (browser): a
# test that uses one is marked so, so that `pytest -m "not e2e and not browser"` runs the rest in
# seconds (pure logic, the store, the Slack stand-in in-process).
E2E_FIXTURES = {"start_bot", "module_bot", "moto_server", "iam", "dynamodb_table"}
BROWSER_FIXTURES = {"chromium"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        on_moto = callspec is not None and callspec.params.get("store_factory") == "dynamodb"
        if fixtures & E2E_FIXTURES or on_moto:
            item.add_marker(pytest.mark.e2e)
        if fixtures & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)


class Clock:
    """A clock tests move by hand: a callable giving "now" (aware UTC, whole seconds)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def close_in_process_bots() -> None:
    """Stop the background threads of every in-process bot a test built (tests.support.provisioning.OPEN),
    before the Slack stand-in they talk to goes away."""
    from tests.support.provisioning import OPEN

    while OPEN:
        OPEN.pop().close()


@pytest.fixture(autouse=True)
def _close_bots_without_slack() -> Iterator[None]:
    """Bots built without the stand-in (or left over) are closed after the test too."""
    yield
    close_in_process_bots()


@pytest.fixture
def clock() -> Clock:
    """The one controllable clock; stores and services under test take it as ``clock``."""
    return Clock()


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with MotoServer(log_path=tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


@contextlib.contextmanager
def _slack_standin() -> Iterator[SlackStandIn]:
    with SlackStandIn(bot_token=BOT_TOKEN) as standin:
        for user_id, name in (
            (REQUESTER, "rita.requester"),
            (APPROVER, "alex.approver"),
            (SECOND_APPROVER, "bea.approver"),
            (RECIPIENT, "nina.newhire"),
            (STRANGER, "sam.stranger"),
        ):
            standin.add_user(user_id, name=name, email=f"{name}@example.com")
        yield standin


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with _slack_standin() as standin:
        yield standin
        close_in_process_bots()


@dataclass
class RunningBot:
    """A bot process plus what a test needs to talk to it and inspect it (either store)."""

    process: BotProcess
    user: SlackUser
    signing_secret: str
    database_path: Path
    env: dict[str, str]
    moto: MotoServer | None = None

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def on_dynamodb(self) -> bool:
        return self.env.get("STORE") == "dynamodb"

    def store(self) -> Store:
        """A new store instance over the bot's data, as another process would open it."""
        if self.on_dynamodb:
            assert self.moto is not None
            return DynamoStore(self.env["DYNAMODB_TABLE"], client=self.moto.boto3_client("dynamodb"))
        return SqliteStore(self.database_path)

    def stored_text(self) -> str:
        """Everything the store holds at rest, as an attacker with a copy would see it: the SQLite
        file with its WAL and SHM bytes, or every item of the DynamoDB table."""
        if self.on_dynamodb:
            assert self.moto is not None
            return dynamodb_dump(self.moto, self.env["DYNAMODB_TABLE"])
        files = sorted(self.database_path.parent.glob(self.database_path.name + "*"))
        return b"".join(p.read_bytes() for p in files).decode("latin-1")


def dynamodb_dump(moto: MotoServer, table: str) -> str:
    """Every item of ``table`` (binary attributes as latin-1 text), one JSON text."""
    client = moto.boto3_client("dynamodb")
    items = [item for page in client.get_paginator("scan").paginate(TableName=table) for item in page["Items"]]
    return json.dumps(items, default=lambda b: bytes(b).decode("latin-1"))


def new_dynamodb_table(moto: MotoServer) -> str:
    """A new bot table on moto server, created as ``iam-user-bot init-store`` does."""
    name = f"iam-user-bot-{uuid.uuid4().hex[:12]}"
    create_table(Table(name, moto.boto3_client("dynamodb")))
    return name


@pytest.fixture
def dynamodb_table(moto_server: MotoServer) -> str:
    """A new, empty bot table on moto server."""
    return new_dynamodb_table(moto_server)


def bot_env(moto: MotoServer, slack: SlackStandIn, db: Path, signing_secret: str, public_url: str) -> dict[str, str]:
    """The contract's environment for a bot wired to moto and the stand-in."""
    return {
        **moto.client_env(),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": signing_secret,
        "SLACK_API_URL": slack.base_url,
        "APPROVAL_CHANNEL_ID": APPROVAL_CHANNEL,
        "APPROVER_USER_IDS": f"{APPROVER},{SECOND_APPROVER}",
        "PUBLIC_BASE_URL": public_url,
        "DATABASE_PATH": str(db),
        "LOG_LEVEL": "DEBUG",
    }


@pytest.fixture
def start_bot(moto_server: MotoServer, slack: SlackStandIn, tmp_path: Path) -> Iterator:
    """Factory: start a bot process (after the test has set IAM up); stopped at teardown.

    ``start(workers=1, store="sqlite", **env)``; ``store="dynamodb"`` puts the bot on a new table on
    moto server (``STORE=dynamodb``). A second call with ``table=`` (and the first one's
    ``signing_secret=``) starts another process on the same table, as a second host would.
    """
    started: list[RunningBot] = []

    def start(
        workers: int = 1,
        store: str = "sqlite",
        table: str | None = None,
        signing_secret: str | None = None,
        **extra_env: str,
    ) -> RunningBot:
        signing_secret = signing_secret or secrets.token_hex(16)
        db = tmp_path / f"bot{len(started) or ''}.db"
        process = BotProcess(env={}, log_path=tmp_path / f"bot{len(started) or ''}.log", workers=workers)
        env = bot_env(moto_server, slack, db, signing_secret, process.url)
        if store == "dynamodb":
            env.update(STORE="dynamodb", DYNAMODB_TABLE=table or new_dynamodb_table(moto_server))
        env.update(extra_env)
        process.env = env
        process.start()
        user = SlackUser(process.url, signing_secret)
        bot = RunningBot(process, user, signing_secret, db, process.env, moto_server)
        started.append(bot)
        return bot

    yield start
    for bot in started:
        bot.process.stop()


@pytest.fixture
def iam(moto_server: MotoServer) -> Iterator:
    """A boto3 IAM client on moto server; every user, group, customer policy and the password
    policy are removed after."""
    client = moto_server.boto3_client("iam")
    yield client
    from tests.support.iam_cleanup import delete_users

    delete_users(client, [user["UserName"] for user in client.list_users()["Users"]])
    with contextlib.suppress(client.exceptions.NoSuchEntityException):
        client.delete_account_password_policy()  # a test that tightened it leaves none behind
    for device in client.list_virtual_mfa_devices()["VirtualMFADevices"]:
        client.delete_virtual_mfa_device(SerialNumber=device["SerialNumber"])
    for group in client.list_groups()["Groups"]:
        for policy in client.list_attached_group_policies(GroupName=group["GroupName"])["AttachedPolicies"]:
            client.detach_group_policy(GroupName=group["GroupName"], PolicyArn=policy["PolicyArn"])
        client.delete_group(GroupName=group["GroupName"])
    for policy in client.list_policies(Scope="Local")["Policies"]:
        client.delete_policy(PolicyArn=policy["Arn"])


# -- browser tests: the reveal page in headless Chromium against the real bot process --------

CHROMIUM = "/usr/bin/chromium"  # Debian's package, installed by .ci/run; never `playwright install`
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator:
    """One headless Chromium for the session (Playwright for Python driving the system binary)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install chromium (as .ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def module_slack() -> Iterator[SlackStandIn]:
    """A Slack stand-in shared by one module's tests (with :func:`module_bot`)."""
    with _slack_standin() as standin:
        yield standin


@pytest.fixture(scope="module")
def module_bot(moto_server: MotoServer, module_slack: SlackStandIn, tmp_path_factory) -> Iterator[RunningBot]:
    """The bot under gunicorn with two worker processes, shared by one module's tests.

    Two workers so that "exactly one reveal" is checked across processes. The reveal rate
    limit is raised: every test client here comes from 127.0.0.1.
    """
    tmp = tmp_path_factory.mktemp("bot")
    signing_secret = secrets.token_hex(16)
    process = BotProcess(env={}, log_path=tmp / "bot.log", workers=2)
    env = bot_env(moto_server, module_slack, tmp / "bot.db", signing_secret, process.url)
    env["REVEAL_RATE_LIMIT"] = "10000 per minute"
    process.env = env
    process.start()
    try:
        yield RunningBot(process, SlackUser(process.url, signing_secret), signing_secret, tmp / "bot.db", process.env)
    finally:
        process.stop()
