"""Thin Bolt listeners, grouped by Slack kind. Each acks fast, calls the workflow, renders blocks."""

from __future__ import annotations

from slack_bolt import App

from bot.approval.workflow import Workflow
from handlers import actions, commands, events, options, views


def register(app: App, workflow: Workflow) -> None:
    """Attach every listener of the bot to ``app``."""
    for group in (commands, views, actions, options, events):
        group.register(app, workflow)
