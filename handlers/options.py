"""External select menus, answered from the in-memory catalog (never a live IAM scan), kept fresh
by :class:`bot.aws.typeahead.Typeahead` (a search that finds little reads that kind again; an
exact name is looked up in IAM, waiting at most 1 s).

Slack: an options response within 3 s, at most 100 options (or option groups), option text
≤ 75 and value ≤ 150 characters; a query matching nothing gets an empty list, not an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import Ack, App

from bot.wizard import views

if TYPE_CHECKING:
    from bot.services import Services


def register(app: App, services: Services) -> None:
    """Options for ``groups``, ``copy_from_user`` and ``remove_users`` (users), ``policies`` and
    ``permissions_boundary``. ``remove_users`` offers every IAM user by name; the form refuses one the
    bot did not make at the field (contract, section 5)."""
    typeahead = services.typeahead

    def groups(ack: Ack, payload: dict) -> None:
        ack(options=views.name_options(typeahead.groups(payload.get("value") or "")))

    def users(ack: Ack, payload: dict) -> None:
        ack(options=views.name_options(typeahead.users(payload.get("value") or "")))

    def policies(ack: Ack, payload: dict) -> None:
        ack(**views.policy_option_groups(typeahead.policies(payload.get("value") or "")))

    app.options("groups")(groups)
    app.options("copy_from_user")(users)
    app.options("remove_users")(users)
    app.options("policies")(policies)
    app.options("permissions_boundary")(policies)
