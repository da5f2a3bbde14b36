"""Thin Bolt listeners, grouped by Slack kind. Each acks fast, calls a service, renders blocks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import App

from handlers import actions, commands, events, options, views

if TYPE_CHECKING:
    from bot.services import Services


def register(app: App, services: Services) -> None:
    """Attach every listener of the bot to ``app``."""
    for group in (commands, views, actions, options, events):
        group.register(app, services)
