"""The ``/iam-user remove`` modal (contract, section 5) and reading its submission. Pure: no I/O.

One view, ``callback_id`` ``removal_request``: ``remove_users`` (multi external select of IAM users;
the options handler offers names, option text the user name), ``remove_mode`` (radio: ``disable``
or ``delete``), ``justification`` (plain text, multiline). Limits honoured: title ≤ 24 chars,
radio ≤ 10 options, option value ≤ 150 chars (an IAM user name is ≤ 64).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

from slack_sdk.models.blocks import (
    ContextBlock,
    ExternalDataMultiSelectElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    RadioButtonsElement,
)
from slack_sdk.models.views import View

from bot.domain.models import RemoveMode
from bot.domain.rules import MAX_RECIPIENTS
from bot.slack.view_state import StateValues, selected_value, selected_values, text_value

REMOVAL_CALLBACK_ID = "removal_request"
USERS_BLOCK, MODE_BLOCK, JUSTIFICATION_BLOCK = "remove_users", "remove_mode", "justification"
MAX_USERS = MAX_RECIPIENTS  # users one removal request takes away, as one onboarding request makes
JUSTIFICATION_MAX = 3000
MODE_OPTIONS = {
    RemoveMode.DISABLE: Option(
        value="disable",
        label="Disable",
        description="Access keys inactive, console password deleted; the users stay",
    ),
    RemoveMode.DELETE: Option(
        value="delete",
        label="Delete",
        description="Everything IAM requires removed in order, then the users",
    ),
}


def removal_view() -> View:
    """The removal form as ``views.open`` sends it."""
    return View(
        type="modal",
        callback_id=REMOVAL_CALLBACK_ID,
        title="Remove IAM users",
        submit="Request removal",
        close="Cancel",
        blocks=[
            InputBlock(
                block_id=USERS_BLOCK,
                label="IAM users to remove",
                hint=f"Only users this bot made (tagged iam-user-bot:managed=true); up to {MAX_USERS}.",
                element=ExternalDataMultiSelectElement(
                    action_id=USERS_BLOCK,
                    placeholder="Type a user name",
                    min_query_length=0,
                    max_selected_items=MAX_USERS,
                ),
            ),
            InputBlock(
                block_id=MODE_BLOCK,
                label="Disable or delete",
                element=RadioButtonsElement(action_id=MODE_BLOCK, options=list(MODE_OPTIONS.values())),
            ),
            InputBlock(
                block_id=JUSTIFICATION_BLOCK,
                label="Why",
                hint="The approvers see this.",
                element=PlainTextInputElement(
                    action_id=JUSTIFICATION_BLOCK, multiline=True, max_length=JUSTIFICATION_MAX
                ),
            ),
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text="Approvers decide as on a new user request; the approval message shows what each "
                        "user holds and the AWS CLI of the removal."
                    )
                ]
            ),
        ],
    )


@functools.cache
def _removal_modal_json() -> str:
    return json.dumps(removal_view().to_dict())


def removal_modal() -> dict[str, object]:
    """:func:`removal_view` as a dict, built and validated once per process."""
    return json.loads(_removal_modal_json())


@dataclass(frozen=True)
class RemovalInput:
    """A submitted removal form: the users, the mode and why; or ``errors`` keyed by block_id."""

    user_names: tuple[str, ...] = ()
    mode: RemoveMode | None = None
    justification: str = ""
    errors: dict[str, str] = field(default_factory=dict)


def parse_removal(values: StateValues) -> RemovalInput:
    """Read the form; every problem as a field error saying what is wrong and what is allowed."""
    users = tuple(selected_values(values, USERS_BLOCK))
    mode_value = selected_value(values, MODE_BLOCK)
    justification = text_value(values, JUSTIFICATION_BLOCK)
    errors = {}
    if not users:
        errors[USERS_BLOCK] = "Pick at least one IAM user."
    elif len(users) > MAX_USERS:
        errors[USERS_BLOCK] = f"Pick at most {MAX_USERS} users; file another request for the rest."
    if mode_value not in {mode.value for mode in RemoveMode}:
        errors[MODE_BLOCK] = "Choose Disable (switch every credential off) or Delete (remove the users)."
    if not justification:
        errors[JUSTIFICATION_BLOCK] = "Say why, so the approvers can judge it."
    if errors:
        return RemovalInput(errors=errors)
    return RemovalInput(user_names=users, mode=RemoveMode(str(mode_value)), justification=justification)
