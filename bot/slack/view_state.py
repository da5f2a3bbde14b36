"""Reading a submitted view's ``state.values``: ``{block_id: {action_id: element state}}``, one
element per input block. Pure: no I/O. Shared by every modal of the bot (the request wizard, the
removal form)."""

from __future__ import annotations

from typing import Any

StateValues = dict[str, dict[str, dict[str, Any]]]


def _element(values: StateValues, block_id: str) -> dict[str, Any]:
    """The single element state of an input block (its action_id is ours to choose)."""
    block = values.get(block_id) or {}
    return next(iter(block.values()), {}) if block else {}


def text_value(values: StateValues, block_id: str) -> str:
    """The text of a plain-text input, trimmed; empty when absent."""
    return (_element(values, block_id).get("value") or "").strip()


def raw_text_value(values: StateValues, block_id: str) -> str:
    """The text as typed (no trimming: a password's spaces count)."""
    return _element(values, block_id).get("value") or ""


def selected_values(values: StateValues, block_id: str) -> list[str]:
    """Values of checkboxes / multi selects (``selected_options``), de-duplicated, order kept."""
    return list(dict.fromkeys(opt["value"] for opt in _element(values, block_id).get("selected_options") or []))


def selected_value(values: StateValues, block_id: str) -> str | None:
    """Value of a radio group or single select (``selected_option``), or None."""
    option = _element(values, block_id).get("selected_option") or {}
    return option.get("value")


def selected_users(values: StateValues, block_id: str) -> list[str]:
    """Users of a multi users select, de-duplicated, order kept."""
    return list(dict.fromkeys(_element(values, block_id).get("selected_users") or []))


def ticked(values: StateValues, block_id: str) -> bool:
    """Whether the single checkbox of ``block_id`` (value = block_id) is ticked."""
    return block_id in selected_values(values, block_id)
