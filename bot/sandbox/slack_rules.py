"""What real Slack accepts in Web API arguments: the limits of messages and views, trigger ids, error answers.

The stand-in's method handlers (:mod:`bot.sandbox.slack_workspace`) read their arguments and check
them with these helpers; a refusal is a :class:`_SlackError`, answered in Slack's shape
``{"ok": false, "error": "...", ...}`` with Slack's error names and ``response_metadata`` messages.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from typing import Any

MAX_MESSAGE_BLOCKS = 50  # chat.postMessage / chat.update: invalid_blocks above this
MAX_SECTION_TEXT = 3000  # a section block's text (Block Kit reference)
MAX_MESSAGE_TEXT = 40_000  # a message's text: msg_too_long above this
MAX_VIEW_BLOCKS = 100  # modal and Home views
MAX_VIEW_TEXT = 24  # modal title, submit and close
MAX_PRIVATE_METADATA = 3000
MAX_CALLBACK_ID = 255

_TRIGGER_RE = re.compile(r"(\d{1,16})\.(\d{1,20})\.([0-9a-f]{1,64})", re.ASCII)

Args = dict[str, Any]
Answer = dict[str, Any]


def make_trigger_id(issued_at: float | None = None) -> str:
    """Return a Slack-shaped trigger id ``"<issue ms>.<digits>.<hex>"`` issued at ``issued_at`` (default now).

    Real trigger ids are opaque; this one encodes its issue time so the stand-in can apply Slack's rule
    that a trigger is usable for about 3 s (``trigger_ttl``). Pass a past time to get a stale one.
    """
    issued_ms = int((time.time() if issued_at is None else issued_at) * 1000)
    return f"{issued_ms}.{secrets.randbelow(10**12):012d}.{secrets.token_hex(16)}"


class _SlackError(Exception):
    """Raised inside a method handler; becomes ``{"ok": false, "error": ..., **extra}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.answer: Answer = {"ok": False, "error": error, **extra}


def _invalid_arguments(messages: list[str]) -> _SlackError:
    return _SlackError("invalid_arguments", response_metadata={"messages": messages})


def _str(args: Args, key: str) -> str:
    value = args.get(key)
    return "" if value is None else str(value)


def _decode(value: Any) -> Any:
    """Slack takes structured arguments (blocks, view) as JSON values or as JSON-encoded strings."""
    if isinstance(value, str):
        try:
            return json.loads(value) if value else []
        except ValueError:
            return None
    return value


def _parse_blocks(value: Any) -> list[dict[str, Any]] | None:
    """Blocks as a list of dicts, each with a ``type``; ``None`` if malformed."""
    value = _decode(value)
    if isinstance(value, list) and all(isinstance(b, dict) and b.get("type") for b in value):
        return value
    return None


def _duplicate_block_ids(blocks: list[dict[str, Any]]) -> set[str]:
    ids = [str(b["block_id"]) for b in blocks if b.get("block_id")]
    return {i for i in ids if ids.count(i) > 1}


def _message_content(args: Args) -> tuple[str | None, list[dict[str, Any]] | None]:
    """Text and blocks of a chat.* call (``None`` when absent), checked the way Slack checks them."""
    text = None if args.get("text") is None else str(args["text"])
    if text is not None and len(text) > MAX_MESSAGE_TEXT:
        raise _SlackError("msg_too_long")
    blocks = None
    if "blocks" in args:
        blocks = _parse_blocks(args["blocks"])
        if blocks is None:
            raise _SlackError("invalid_blocks_format")
        problems = []
        if len(blocks) > MAX_MESSAGE_BLOCKS:
            problems.append(f"[ERROR] no more than {MAX_MESSAGE_BLOCKS} items allowed [json-pointer:/blocks]")
        for dup in sorted(_duplicate_block_ids(blocks)):
            problems.append(f"[ERROR] duplicate block_id {dup!r} [json-pointer:/blocks]")
        for index, block in enumerate(blocks):
            section_text = (block.get("text") or {}).get("text") if block["type"] == "section" else None
            if isinstance(section_text, str) and len(section_text) > MAX_SECTION_TEXT:
                limit = MAX_SECTION_TEXT
                problems.append(f"[ERROR] must be less than {limit + 1} characters [json-pointer:/blocks/{index}/text]")
        if problems:
            raise _SlackError("invalid_blocks", response_metadata={"messages": problems})
    if not text and not blocks:
        raise _SlackError("no_text")
    return text, blocks


def _view_arg(args: Args) -> dict[str, Any]:
    view = _decode(args.get("view"))
    if not isinstance(view, dict):
        raise _invalid_arguments(["[ERROR] missing or malformed required field: view [json-pointer:/view]"])
    return view


def _check_view(view: dict[str, Any], kind: str) -> None:
    """Raise ``invalid_arguments`` with Slack-style messages for the limits of modal/Home views."""
    problems: list[str] = []

    def need(condition: bool, message: str, pointer: str = "") -> None:
        if not condition:
            problems.append(f"[ERROR] {message} [json-pointer:/view{pointer}]")

    need(view.get("type") == kind, f'must be "{kind}"', "/type")
    if kind == "modal":
        need(isinstance(view.get("title"), dict), "missing required field: title", "/title")
        for key in ("title", "submit", "close"):
            text = view[key].get("text") if isinstance(view.get(key), dict) else ""
            ok = key not in view or (isinstance(text, str) and 0 < len(text) <= MAX_VIEW_TEXT)
            need(ok, f"must be between 1 and {MAX_VIEW_TEXT} characters", f"/{key}/text")
    blocks = _parse_blocks(view.get("blocks"))
    need(blocks is not None, "blocks must be a list of objects with a type", "/blocks")
    blocks = blocks or []
    need(0 < len(blocks) <= MAX_VIEW_BLOCKS, f"must hold between 1 and {MAX_VIEW_BLOCKS} blocks", "/blocks")
    for dup in sorted(_duplicate_block_ids(blocks)):
        need(False, f"duplicate block_id {dup!r}", "/blocks")
    if kind == "modal" and any(b.get("type") == "input" for b in blocks):
        need("submit" in view, "must provide a submit property when using input blocks")
    for key, limit in (("private_metadata", MAX_PRIVATE_METADATA), ("callback_id", MAX_CALLBACK_ID)):
        need(len(str(view.get(key, ""))) <= limit, f"must be no more than {limit} characters", f"/{key}")
    if problems:
        raise _invalid_arguments(problems)
