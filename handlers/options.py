"""External select menus, answered from the in-memory catalog (never a live IAM scan)."""

from __future__ import annotations

from slack_bolt import Ack, App

from bot import blocks
from bot.workflow import Workflow


def register(app: App, workflow: Workflow) -> None:
    def groups(ack: Ack, payload: dict) -> None:
        ack(options=blocks.name_options(workflow.catalog.search_groups(payload.get("value") or "")))

    app.options("groups")(groups)
