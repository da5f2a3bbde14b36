"""How the demo reads and answers Slack the way a person would: fill a modal by block_id, read messages.

:class:`FormFiller` fills the onboarding form through the contract's block_ids only (never the
bot's internals), so it keeps working when the form grows into a multi-view wizard: it answers
each view's input blocks, submits, and follows ``response_action`` update/push until the bot's
answer is empty. :func:`blocks_as_text` renders Block Kit as terminal lines. No I/O here except
through the two callables a :class:`FormFiller` is given and the transcript's stream.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

Names = Mapping[str, str]  # Slack user or channel id -> name, for showing mentions readably
NO_NAMES: Names = {}


class DemoFailed(Exception):
    """A step of the demo did not happen as it should; the message says which and why."""


def mask(value: str | None) -> str:
    """A secret shown as its first four characters and ``****`` (``-`` when absent)."""
    if not value:
        return "-"
    return value[:4] + "****" if len(value) > 8 else "****"


@dataclass
class Transcript:
    """What the demo prints, kept so it can check itself for leaked secrets."""

    out: TextIO | None
    lines: list[str] = field(default_factory=list)
    checks: int = 0

    def say(self, text: str = "", indent: int = 0) -> None:
        for line in text.splitlines() or [""]:
            line = " " * indent + line
            self.lines.append(line)
            if self.out is None:
                continue
            try:
                print(line, file=self.out, flush=True)
            except BrokenPipeError:  # `demo | head`: keep running and cleaning up, stop printing
                self.out = None

    def heading(self, text: str) -> None:
        self.say()
        self.say(f"== {text} ==")

    def check(self, ok: bool, what: str, why: str = "") -> None:
        """Print ``[ok] what``, or raise :class:`DemoFailed` naming ``what`` and ``why``."""
        if not ok:
            self.say(f"[FAIL] {what}" + (f": {why}" if why else ""), indent=2)
            raise DemoFailed(f"{what}{': ' + why if why else ''}")
        self.checks += 1
        self.say(f"[ok] {what}", indent=2)

    def text(self) -> str:
        return "\n".join(self.lines)


# -- Slack rendering ------------------------------------------------------------------------------


def mrkdwn_to_text(text: str, names: Names = NO_NAMES) -> str:
    """Slack mrkdwn made readable in a terminal: mentions to names, date tokens to their fallback."""
    text = re.sub(r"<@([A-Z0-9]+)>", lambda m: "@" + names.get(m.group(1), m.group(1)), text)
    text = re.sub(
        r"<#([A-Z0-9]+)(?:\|([^>]*))?>", lambda m: "#" + (m.group(2) or names.get(m.group(1), m.group(1))), text
    )
    text = re.sub(r"<!date\^[^|>]*\|([^>]*)>", r"\1", text)
    text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def text_of(obj: Any, names: Names = NO_NAMES) -> str:
    """The readable text of a Block Kit text object (``""`` for anything else)."""
    return mrkdwn_to_text(obj.get("text", ""), names) if isinstance(obj, dict) else ""


def blocks_as_text(blocks: Any, names: Names = NO_NAMES) -> str:
    """A message's or view's blocks as plain lines (headers, sections, buttons, context)."""
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    lines: list[str] = []
    for block in blocks or []:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"## {text_of(block.get('text'), names)}")
        elif kind == "section":
            if block.get("text"):
                lines.append(text_of(block["text"], names))
            lines.extend(text_of(f, names) for f in block.get("fields") or [])
        elif kind == "context":
            lines.append("   " + "  ".join(text_of(e, names) for e in block.get("elements") or []))
        elif kind == "divider":
            lines.append("-" * 40)
        elif kind == "actions":
            lines.append("  ".join(f"[ {text_of(e.get('text'))} ]" for e in block.get("elements") or []))
        elif kind == "input":
            lines.append(f"{text_of(block.get('label'))}: …")
    return "\n".join(lines)


def option_label(option: dict[str, Any]) -> str:
    """An option as a person sees it: its text, else its value."""
    return text_of(option.get("text")) or str(option.get("value"))


def option_matches(option: dict[str, Any], wanted: str) -> bool:
    """Whether ``wanted`` is the option's value or its text."""
    return wanted in (option.get("value"), text_of(option.get("text")))


# -- the form -------------------------------------------------------------------------------------

ELEMENT_WORDS = {
    "multi_users_select": "pick Slack users",
    "users_select": "pick a Slack user",
    "plain_text_input": "type text",
    "checkboxes": "tick boxes",
    "radio_buttons": "choose one",
    "static_select": "choose one",
    "multi_static_select": "choose some",
    "external_select": "search and choose one",
    "multi_external_select": "search and choose some",
}


@dataclass
class FormFiller:
    """Fills the onboarding form's views by block_id (contract, "The onboarding modal") and submits.

    ``suggest(view, block_id, action_id, query)`` returns the options the bot offers for an
    external select; ``submit(view, values)`` returns the bot's parsed JSON answer (``None`` for an
    empty answer, which closes the modal).
    """

    answers: dict[str, Any]
    suggest: Callable[[dict[str, Any], str, str, str], list[dict[str, Any]]]
    submit: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | None]
    transcript: Transcript
    names: Names = field(default_factory=dict)
    max_views: int = 10  # a wizard longer than this is a loop, not a form

    def run(self, view: dict[str, Any]) -> None:
        """Fill and submit ``view``; follow ``response_action`` update/push until the modal closes.

        Raises:
            DemoFailed: the bot answered ``errors``, or asked for something the demo cannot answer.
        """
        for number in range(1, self.max_views + 1):
            title = text_of(view.get("title"))
            self.transcript.say(f'View {number}: "{title}" (callback_id {view.get("callback_id")})', indent=2)
            values = self.fill(view)
            answer = self.submit(view, values)
            if not answer:
                self.transcript.say("Submitted; the bot closed the modal.", indent=2)
                return
            action = answer.get("response_action")
            if action == "errors":
                problems = "; ".join(f"{k}: {v}" for k, v in (answer.get("errors") or {}).items())
                raise DemoFailed(f"the bot refused the form: {problems}")
            if action in ("update", "push") and isinstance(answer.get("view"), dict):
                # The next view keeps the modal's id, as Slack does for update (push gets a new id).
                view = {"id": view.get("id", "V0DEMO"), **answer["view"]}
                self.transcript.say(f"Submitted; the bot answered {action} with the next view.", indent=2)
                continue
            if action == "clear":
                return
            raise DemoFailed(f"unexpected answer to the form: {json.dumps(answer)[:200]}")
        raise DemoFailed(f"the form did not close after {self.max_views} views")

    def fill(self, view: dict[str, Any]) -> dict[str, Any]:
        """``state.values`` for every input block of ``view``, printing each question and answer."""
        values: dict[str, Any] = {}
        for block in view.get("blocks") or []:
            if block.get("type") != "input":
                continue
            block_id, element = block.get("block_id", ""), block.get("element") or {}
            action_id, kind = element.get("action_id", block_id), element.get("type", "")
            label = text_of(block.get("label"))
            optional = " (optional)" if block.get("optional") else ""
            self.transcript.say(f"- {label}{optional}  [{block_id}: {ELEMENT_WORDS.get(kind, kind)}]", indent=4)
            if element.get("options"):
                shown = ", ".join(option_label(o) for o in element["options"])
                self.transcript.say(f"  options: {shown}", indent=4)
            if block_id not in self.answers:
                if not block.get("optional"):
                    raise DemoFailed(f"the form asks for {block_id!r} ({label}) and the demo has no answer for it")
                values[block_id] = {action_id: self._empty(kind)}
                self.transcript.say("  answer: (left empty)", indent=4)
                continue
            state, shown_answer = self._state(view, block_id, action_id, element, self.answers[block_id])
            values[block_id] = {action_id: state}
            self.transcript.say(f"  answer: {shown_answer}", indent=4)
        return values

    @staticmethod
    def _empty(kind: str) -> dict[str, Any]:
        if kind.startswith("multi_") or kind == "checkboxes":
            key = "selected_users" if kind == "multi_users_select" else "selected_options"
            return {"type": kind, key: []}
        if kind == "plain_text_input":
            return {"type": kind, "value": None}
        return {"type": kind, "selected_option": None}

    def _pick(self, options: list[dict[str, Any]], wanted: list[str], block_id: str) -> list[dict[str, Any]]:
        picked = []
        for item in wanted:
            match = next((o for o in options if option_matches(o, item)), None)
            if match is None:
                offered = ", ".join(option_label(o) for o in options) or "nothing"
                raise DemoFailed(f"{block_id}: the form offers no option {item!r} (it offers {offered})")
            picked.append({"text": match.get("text"), "value": match.get("value")})
        return picked

    def _state(
        self, view: dict[str, Any], block_id: str, action_id: str, element: dict[str, Any], answer: Any
    ) -> tuple[dict[str, Any], str]:
        kind = element.get("type", "")
        wanted = [answer] if isinstance(answer, str) else list(answer)
        if kind == "plain_text_input":
            text = answer if isinstance(answer, str) else "\n".join(answer)
            return {"type": kind, "value": text}, text.replace("\n", " / ")
        if kind == "multi_users_select":
            return {"type": kind, "selected_users": wanted}, ", ".join("@" + self.names.get(u, u) for u in wanted)
        if kind == "users_select":
            return {"type": kind, "selected_user": wanted[0]}, "@" + self.names.get(wanted[0], wanted[0])
        if kind in ("external_select", "multi_external_select"):
            options = [o for item in wanted for o in self.suggest(view, block_id, action_id, item)]
        else:
            options = list(element.get("options") or [])
            options += [o for group in element.get("option_groups") or [] for o in group.get("options") or []]
        picked = self._pick(options, wanted, block_id)
        shown = ", ".join(option_label(o) for o in picked)
        if kind in ("checkboxes", "multi_static_select", "multi_external_select"):
            return {"type": kind, "selected_options": picked}, shown
        return {"type": kind, "selected_option": picked[0]}, shown
