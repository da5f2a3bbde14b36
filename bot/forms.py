"""Read a modal submission's ``view.state.values`` into a :class:`RequestForm`. Pure.

Errors come back keyed by the contract's block_ids (input blocks only), ready for
``response_action: errors``; each message says what is wrong and what is allowed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.models import AccessType, RequestForm
from bot.rules import parse_user_names, recipients_error, user_names_error

StateValues = dict[str, dict[str, dict[str, Any]]]
JUSTIFICATION_MIN = 10


@dataclass
class FormResult:
    """Either ``form`` (valid) or ``errors`` ({block_id: message}), never both."""

    form: RequestForm | None = None
    errors: dict[str, str] = field(default_factory=dict)


def _element(values: StateValues, block_id: str) -> dict[str, Any]:
    """The single element state of an input block (the action_id is ours to choose)."""
    block = values.get(block_id) or {}
    return next(iter(block.values()), {}) if block else {}


def text_value(values: StateValues, block_id: str) -> str:
    return (_element(values, block_id).get("value") or "").strip()


def selected_values(values: StateValues, block_id: str) -> list[str]:
    """Values of checkboxes / multi selects (``selected_options``)."""
    return [opt["value"] for opt in _element(values, block_id).get("selected_options") or []]


def selected_users(values: StateValues, block_id: str) -> list[str]:
    """Users of a multi users select, de-duplicated, order kept."""
    return list(dict.fromkeys(_element(values, block_id).get("selected_users") or []))


def parse_submission(
    values: StateValues,
    existing_users_lower: Iterable[str],
    group_exists: Callable[[str], bool],
) -> FormResult:
    """Validate a submission of the onboarding modal.

    Args:
        values: ``view.state.values`` from the ``view_submission`` payload.
        existing_users_lower: existing IAM user names, lower-cased (from the catalog).
        group_exists: whether an IAM group of that exact name exists.
    """
    errors: dict[str, str] = {}
    recipients = selected_users(values, "recipients")
    if error := recipients_error(recipients):
        errors["recipients"] = error
    names = parse_user_names(text_value(values, "user_names"))
    if "recipients" not in errors and (error := user_names_error(names, len(recipients), existing_users_lower)):
        errors["user_names"] = error
    access = set()
    for value in selected_values(values, "access_types"):
        try:
            access.add(AccessType(value))
        except ValueError:
            errors["access_types"] = f"Unknown access type “{value}”; choose programmatic and/or console."
    if not access and "access_types" not in errors:
        errors["access_types"] = "Choose at least one access type: programmatic (access key) and/or console (password)."
    groups = list(dict.fromkeys(selected_values(values, "groups")))
    missing = [g for g in groups if not group_exists(g)]
    if missing:
        errors["groups"] = f"IAM has no group named “{missing[0]}” (any more); pick groups from the list."
    if len(groups) > 10:
        errors["groups"] = "IAM allows a user in at most 10 groups; remove some."
    justification = text_value(values, "justification")
    if len(justification) < JUSTIFICATION_MIN:
        errors["justification"] = f"Say why this access is needed (at least {JUSTIFICATION_MIN} characters)."
    if errors:
        return FormResult(errors=errors)
    return FormResult(
        form=RequestForm(
            recipients=tuple(recipients),
            user_names=tuple(names),
            access_types=frozenset(access),
            require_reset="require_reset" in selected_values(values, "require_reset"),
            groups=tuple(groups),
            justification=justification,
        )
    )
