"""How the demo reads and answers Slack the way a person would: fill a modal by block_id, read messages.

:class:`NarratedFormFiller` fills the onboarding form through the contract's block_ids only
(never the bot's internals), so it keeps working when the form grows into a multi-view wizard:
it answers each view's input blocks, submits, and follows ``response_action`` update/push until
the bot's answer is empty. :func:`blocks_as_text` renders Block Kit as terminal lines.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from bot.sandbox.form_filler import FormFiller

Names = Mapping[str, str]  # Slack user or channel id -> name, for showing mentions readably
NO_NAMES: Names = {}


class DemoFailed(Exception):
    """A step of the demo did not happen as it should; the message says which and why."""


def mask(value: str | None) -> str:
    """A secret shown as its length only, ``[hidden: 40 characters]`` (``-`` when absent): no
    character of it, not even the first few, which would narrow down a guess."""
    if not value:
        return "-"
    return f"[hidden: {len(value)} characters]"


# Slack's emoji codes in the bot's messages, as the characters Slack draws for them
# (tests/sandbox/test_demo.py checks that every code the bot writes is here).
EMOJI = {
    "alarm_clock": "\N{ALARM CLOCK}",
    "bust_in_silhouette": "\N{BUST IN SILHOUETTE}",
    "gear": "\N{GEAR}\ufe0f",
    "heavy_multiplication_x": "\N{HEAVY MULTIPLICATION X}\ufe0f",
    "hourglass": "\N{HOURGLASS}",
    "hourglass_flowing_sand": "\N{HOURGLASS WITH FLOWING SAND}",
    "key": "\N{KEY}",
    "no_entry": "\N{NO ENTRY}",
    "rotating_light": "\N{POLICE CARS REVOLVING LIGHT}",
    "tada": "\N{PARTY POPPER}",
    "warning": "\N{WARNING SIGN}\ufe0f",
    "wastebasket": "\N{WASTEBASKET}\ufe0f",
    "white_check_mark": "\N{WHITE HEAVY CHECK MARK}",
    "x": "\N{CROSS MARK}",
    "zzz": "\N{SLEEPING SYMBOL}",
}
_EMOJI_CODE = re.compile(r":([a-z0-9_+-]+):")


def for_terminal(line: str, encoding: str | None) -> str:
    """``line`` as a terminal with ``encoding`` can show it: emoji it cannot encode become
    ``[name]`` (``[warning]``), any other such character ``?``."""
    encoding = encoding or "utf-8"
    try:
        line.encode(encoding)
        return line
    except (UnicodeEncodeError, LookupError):
        for name, char in EMOJI.items():
            line = line.replace(char, f"[{name}]")
        return line.encode(encoding, "replace").decode(encoding, "replace")


@dataclass
class Transcript:
    """What the demo prints, kept so it can check itself for leaked secrets."""

    out: TextIO | None
    lines: list[str] = field(default_factory=list)
    checks: int = 0

    def say(self, text: str = "", indent: int = 0) -> None:
        for line in text.splitlines() or [""]:
            line = for_terminal(" " * indent + line, getattr(self.out, "encoding", None))
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
    """Slack mrkdwn made readable in a terminal: mentions to names, date tokens to their fallback,
    emoji codes to the characters Slack draws (:data:`EMOJI`; unknown codes stay as they are)."""
    text = _EMOJI_CODE.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)
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


class NarratedFormFiller(FormFiller):
    """The harness's :class:`~bot.sandbox.form_filler.FormFiller`, narrated for the demo's transcript.

    It prints each view's questions (label, block_id, kind of element, options) with the answer
    given, stops with :class:`DemoFailed` when a required field has no answer, and waits up to
    ``catalog_wait`` seconds for an external select to offer an option, since the bot loads its
    IAM catalog in the background at start-up.
    """

    def __init__(
        self, user: Any, user_id: str, transcript: Transcript, names: Names = NO_NAMES, catalog_wait: float = 20.0
    ) -> None:
        super().__init__(user, user_id)
        self.transcript = transcript
        self.names = names
        self.catalog_wait = catalog_wait
        self.views = 0

    def _external(self, view: dict[str, Any], action_id: str, wanted: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.catalog_wait
        while True:
            try:
                return super()._external(view, action_id, wanted)
            except AssertionError as missing:
                if time.monotonic() > deadline:
                    raise DemoFailed(str(missing)) from None
                time.sleep(0.2)

    def values(self, view: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
        """``state.values`` for ``view``, printing each question and the answer given."""
        self.views += 1
        say = self.transcript.say
        say(f'View {self.views}: "{text_of(view.get("title"))}" (callback_id {view.get("callback_id")})', indent=2)
        inputs = [b for b in view.get("blocks") or [] if b.get("type") == "input"]
        for block in inputs:
            if block.get("block_id") not in answers and not block.get("optional"):
                label = text_of(block.get("label"))
                raise DemoFailed(f"the form asks for {block.get('block_id')!r} ({label}) and the demo has no answer")
        try:
            state = super().values(view, answers)
        except AssertionError as problem:
            raise DemoFailed(str(problem)) from None
        for block in inputs:
            element = block.get("element") or {}
            kind = element.get("type", "")
            optional = " (optional)" if block.get("optional") else ""
            say(f"- {text_of(block.get('label'))}{optional}  [{block['block_id']}: {ELEMENT_WORDS.get(kind, kind)}]", 4)
            if element.get("options"):
                say(f"  options: {', '.join(option_label(o) for o in element['options'])}", indent=4)
            say(f"  answer: {self._shown(next(iter(state[block['block_id']].values())))}", indent=4)
        return state

    def _shown(self, entry: dict[str, Any]) -> str:
        if entry.get("value"):
            return str(entry["value"]).replace("\n", " / ")
        users = entry.get("selected_users") or ([entry["selected_user"]] if entry.get("selected_user") else [])
        options = entry.get("selected_options") or ([entry["selected_option"]] if entry.get("selected_option") else [])
        shown = [f"@{self.names.get(u, u)}" for u in users] + [option_label(o) for o in options]
        return ", ".join(shown) or "(left empty)"

    def run(self, view: dict[str, Any], answers: dict[str, Any]) -> None:
        """Fill and submit ``view`` and every view the bot answers with, until the modal closes.

        Raises:
            DemoFailed: the bot refused the form (``response_action: errors``) or answered oddly.
        """
        answer, seen = self.submit(view, answers)
        body = answer.json() if answer.body.strip() else None
        if answer.status != 200:
            raise DemoFailed(f"the form submission got HTTP {answer.status}")
        if body and body.get("response_action") == "errors":
            problems = "; ".join(f"{k}: {v}" for k, v in (body.get("errors") or {}).items())
            raise DemoFailed(f"the bot refused the form: {problems}")
        if body and body.get("response_action") != "clear":
            raise DemoFailed(f"unexpected answer to the form: {json.dumps(body)[:200]}")
        self.transcript.say(f"Submitted {len(seen)} view(s); the bot closed the modal.", indent=2)
