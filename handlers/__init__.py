"""Thin Bolt listeners, grouped by Slack kind. Each acks fast, calls a service, renders blocks.

Work that may take longer than an ack (Slack posts, IAM reads) runs in a lazy listener
(``app.action(...)(ack=…, lazy=[…])``): on a server Bolt runs it on its thread pool after the ack,
on AWS Lambda in a second invocation of the function (:mod:`bot.serverless`). A lazy listener gets
the same payload and never acks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import Ack, App

if TYPE_CHECKING:
    from bot.services import Services


def ack_only(ack: Ack) -> None:
    """Acknowledge at once (the lazy listeners do the work)."""
    ack()


def register(app: App, services: Services) -> None:
    """Attach every listener of the bot to ``app``."""
    from handlers import actions, commands, events, options, views

    for group in (commands, views, actions, options, events):
        group.register(app, services)
