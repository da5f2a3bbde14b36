"""The bot as deployed on AWS Lambda, for tests: ``bot.serverless.Function`` behind a local function
URL (:class:`bot.sandbox.function_url.FunctionUrl`), its asynchronous self-invocations run by
:class:`~bot.sandbox.function_url.LocalLambda`, its state in a DynamoDB table on moto server."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from bot.config import load_settings
from bot.sandbox.function_url import FunctionUrl, LocalLambda, context
from bot.sandbox.slack_user import SlackUser
from bot.serverless import Function
from tests.conftest import APPROVAL_CHANNEL, APPROVER, BOT_TOKEN

SIGNING_SECRET = "lambda-signing-secret-0123456789"


class Deployed:
    """The function behind its local URL, with a Slack user that signs for it."""

    def __init__(self, function: Function, url: FunctionUrl, invoker: LocalLambda, table: str) -> None:
        self.function = function
        self.url = url.url
        self.invoker = invoker
        self.table = table
        self.user = SlackUser(url.url, SIGNING_SECRET)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return self.function.handle(event, context())


@contextlib.contextmanager
def deploy(
    moto_server: Any,
    slack: Any,
    table: str,
    monkeypatch: pytest.MonkeyPatch,
    lazy_delay: float = 0.0,
    **config: Any,
) -> Iterator[Deployed]:
    """The function on ``table``, with moto server's AWS environment; ``lazy_delay``: seconds each
    asynchronous invocation takes; ``config``: more settings (``load_settings`` names)."""
    for name, value in moto_server.client_env().items():
        monkeypatch.setenv(name, value)
    holder: dict[str, Function] = {}

    def handle(event: dict[str, Any], ctx: Any) -> dict[str, Any]:
        return holder["function"].handle(event, ctx)

    invoker = LocalLambda(handle, lazy_delay)
    with FunctionUrl(handle) as url:
        settings = load_settings(
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack.base_url,
            approval_channel_id=APPROVAL_CHANNEL,
            approver_user_ids=APPROVER,
            public_base_url=url.url,
            store="dynamodb",
            dynamodb_table=table,
            **config,
        )
        function = Function(settings, lambda_client=invoker)
        holder["function"] = function
        try:
            yield Deployed(function, url, invoker, table)
        finally:
            invoker.wait()
            function.services.close()
