"""External select menus, answered from the in-memory catalog (never a live IAM scan).

Slack: an options response within 3 s, at most 100 options (or option groups), option text
≤ 75 and value ≤ 150 characters; a query matching nothing gets an empty list, not an error.
"""

from __future__ import annotations

from slack_bolt import Ack, App

from bot.approval.workflow import Workflow
from bot.wizard import views as modal_blocks


def register(app: App, workflow: Workflow) -> None:
    """Options for ``groups``, ``copy_from_user`` (users), ``policies`` and ``permissions_boundary``."""
    catalog = workflow.catalog

    def groups(ack: Ack, payload: dict) -> None:
        ack(options=modal_blocks.name_options(catalog.search_groups(payload.get("value") or "")))

    def users(ack: Ack, payload: dict) -> None:
        ack(options=modal_blocks.name_options(catalog.search_users(payload.get("value") or "")))

    def policies(ack: Ack, payload: dict) -> None:
        ack(**modal_blocks.policy_option_groups(catalog.search_policies(payload.get("value") or "")))

    app.options("groups")(groups)
    app.options("copy_from_user")(users)
    app.options("policies")(policies)
    app.options("permissions_boundary")(policies)
