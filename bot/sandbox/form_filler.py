"""Fill a view's input blocks by the contract's block_ids the way a person would, and submit it.

Used by the end-to-end tests and (narrated) by the ``demo`` command; see :class:`FormFiller`.
"""

from __future__ import annotations

from typing import Any

from bot.sandbox.processes import HttpAnswer
from bot.sandbox.slack_user import SlackUser

Answers = dict[str, Any]


def _options_of(element: dict[str, Any]) -> list[dict[str, Any]]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def _option_for(element: dict[str, Any], wanted: str) -> dict[str, Any]:
    """The option of a static element whose value or text is ``wanted``."""
    for option in _options_of(element):
        if wanted in (option.get("value"), option.get("text", {}).get("text")):
            return {"value": option["value"], "text": option["text"]}
    raise AssertionError(f"no option {wanted!r} in {element.get('action_id')}")


class FormFiller:
    """Fills a view's input blocks the way a person would, by the contract's block_ids.

    ``answers`` maps block_id to a value: a string for text inputs and single selects, a list of
    strings for multi selects and checkboxes, Slack user ids for user selects. Options of static
    elements are matched by value or text; options of external selects are found by typing the
    text into the menu (``block_suggestion``) and taking the option with exactly that text, as
    outside checks do. Blocks without an answer are left empty.
    """

    def __init__(self, user: SlackUser, user_id: str) -> None:
        self.user = user
        self.user_id = user_id

    def _external(self, view: dict[str, Any], action_id: str, wanted: str) -> dict[str, Any]:
        answer = self.user.block_suggestion(self.user_id, view, action_id, wanted)
        body = answer.json() or {}
        options = list(body.get("options") or [])
        for group in body.get("option_groups") or []:
            options.extend(group.get("options") or [])
        for option in options:
            if option["text"]["text"] == wanted:
                return {"value": option["value"], "text": option["text"]}
        raise AssertionError(f"the {action_id} menu offers no option {wanted!r} (got {len(options)} options)")

    def values(self, view: dict[str, Any], answers: Answers) -> dict[str, Any]:
        """``view.state.values`` for ``view`` filled from ``answers``."""
        state: dict[str, Any] = {}
        for block in view.get("blocks", []):
            if block.get("type") != "input":
                continue
            element = block["element"]
            kind, action_id = element["type"], element.get("action_id", block["block_id"])
            wanted = answers.get(block["block_id"])
            entry: dict[str, Any] = {"type": kind}
            many = list(wanted) if isinstance(wanted, list | tuple) else ([wanted] if wanted else [])
            if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
                entry["value"] = wanted if wanted else None
            elif kind == "multi_users_select":
                entry["selected_users"] = many
            elif kind == "users_select":
                entry["selected_user"] = wanted
            elif kind in ("checkboxes", "multi_static_select"):
                entry["selected_options"] = [_option_for(element, w) for w in many]
            elif kind in ("radio_buttons", "static_select"):
                entry["selected_option"] = _option_for(element, wanted) if wanted else None
            elif kind == "multi_external_select":
                entry["selected_options"] = [self._external(view, action_id, w) for w in many]
            elif kind == "external_select":
                entry["selected_option"] = self._external(view, action_id, wanted) if wanted else None
            else:
                raise AssertionError(f"FormFiller cannot fill a {kind}")
            state[block["block_id"]] = {action_id: entry}
        return state

    def submit(self, view: dict[str, Any], answers: Answers, max_views: int = 8) -> tuple[HttpAnswer, list[dict]]:
        """Fill and submit ``view``, then every view the bot answers with (``update``/``push``).

        Returns the last answer (empty body when the modal closed, or ``response_action:
        errors``) and the views seen, in order.
        """
        seen = [view]
        for _ in range(max_views):
            answer = self.user.view_submission(self.user_id, view, self.values(view, answers))
            body = answer.json() if answer.body else None
            if not body or body.get("response_action") not in ("update", "push"):
                return answer, seen
            view = {**body["view"], "id": view.get("id", "V0"), "hash": view.get("hash", "")}
            seen.append(view)
        raise AssertionError(f"the modal did not close after {max_views} views")
