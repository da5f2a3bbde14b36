"""A script of shell commands in Slack, never cut mid-command. Pure: no I/O.

Blocks (:func:`script_blocks`): code-block sections for a message or a view, each within a
section's 3,000 characters, within a budget of blocks and characters. A command is shown whole or
not at all: a command longer than one section holds, and the commands past the budget, are
replaced by a note saying so and where the whole script is (a pasted command cut with "…" would
fail, or worse, do something else).

Messages (:func:`script_messages`): the whole script as plain-text messages (code fences, no
blocks), split between commands, for the ``status <id>`` answer. A message's text may hold
40,000 characters; the longest command IAM's limits allow (50 tags of 128 + 256 characters on a
``create-user``) is about 21,000.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.domain.limits import MESSAGE_TEXT_MAX, SECTION_TEXT_MAX
from bot.slack.blocks import escape

FENCE = "```"
CODE_ROOM = SECTION_TEXT_MAX - 2 * len(FENCE) - 2  # the fences and their newlines
SCRIPT_MESSAGE_CHARS = 12_000  # a part of the whole script (a single longer command goes alone)


@dataclass
class ScriptBlocks:
    """Blocks showing a script: ``shown`` commands whole, ``left_out`` replaced by notes."""

    blocks: list[Block] = field(default_factory=list)
    shown: int = 0
    left_out: int = 0


def command_name(line: str) -> str:
    """``aws iam create-user`` (the first three words) of a command line, for notes about it."""
    return " ".join(line.split()[:3])


def script_blocks(
    lines: Sequence[str], *, most_blocks: int, most_chars: int, whole_script: str, block_id: str | None = None
) -> ScriptBlocks:
    """``lines`` as code sections of at most :data:`CODE_ROOM` characters, cut between lines.

    Args:
        most_blocks: blocks this may use (at least 1), notes included.
        most_chars: characters the code sections may hold in all.
        whole_script: where the reader finds the whole script, as a sentence's end
            ("DM me `status R-…` for the whole script").
        block_id: prefix of the blocks' ids (``<prefix>_0``…), or None for none.
    """
    out = ScriptBlocks()
    chunk: list[str] = []
    size = used = 0

    def add(block: Block) -> None:
        if block_id is not None:
            block.block_id = f"{block_id}_{len(out.blocks)}"
        out.blocks.append(block)

    def flush() -> None:
        nonlocal chunk, size, used
        if chunk:
            text = "\n".join(chunk)
            add(SectionBlock(text=MarkdownTextObject(text=f"{FENCE}\n{text}\n{FENCE}")))
            used += len(text)
        chunk, size = [], 0

    for index, line in enumerate(lines):
        shown = escape(line)
        too_long = len(shown) > CODE_ROOM
        joins_chunk = not too_long and bool(chunk) and size + 1 + len(shown) <= CODE_ROOM
        needed = len(out.blocks) + (1 if chunk else 0) + (0 if joins_chunk else 1)
        last = index == len(lines) - 1
        if needed + (0 if last else 1) > most_blocks or (not too_long and used + size + len(shown) > most_chars):
            break  # what is left gets one note, in the block kept free for it
        if too_long:
            flush()
            note = (
                f":warning: Command {index + 1} (`{command_name(line)}` …, {len(line):,} characters) is longer than "
                f"one Slack block holds, so it is not shown here: {whole_script}."
            )
            add(ContextBlock(elements=[MarkdownTextObject(text=note)]))
            out.left_out += 1
            continue
        if not joins_chunk:
            flush()
        size += len(shown) + (1 if chunk else 0)
        chunk.append(shown)
        out.shown += 1
    flush()
    rest = len(lines) - out.shown - out.left_out
    if rest:
        note = f":warning: {rest} more command(s) not shown (Slack's size limits for one message): {whole_script}."
        add(ContextBlock(elements=[MarkdownTextObject(text=note)]))
        out.left_out += rest
    return out


def script_messages(title: str, notes: Sequence[str], lines: Sequence[str]) -> list[str]:
    """The whole script as message texts: ``title`` and ``notes`` first, then the commands in
    code fences, split between commands into parts of about :data:`SCRIPT_MESSAGE_CHARS`.

    Raises:
        ValueError: a single command would not fit one message (cannot happen within IAM's limits).
    """
    parts: list[list[str]] = [[]]
    size = 0
    for line in lines:
        shown = escape(line)
        if len(shown) + 2 * len(FENCE) + 200 > MESSAGE_TEXT_MAX:
            raise ValueError(f"a command of {len(shown)} characters does not fit one Slack message")
        if parts[-1] and size + len(shown) + 1 > SCRIPT_MESSAGE_CHARS:
            parts.append([])
            size = 0
        parts[-1].append(shown)
        size += len(shown) + 1
    texts = []
    for number, part in enumerate(parts, start=1):
        head = title if len(parts) == 1 else f"{title} (part {number} of {len(parts)})"
        if number == 1 and notes:
            head += "\n" + " ".join(notes)
        texts.append(f"{head}\n{FENCE}\n" + "\n".join(part) + f"\n{FENCE}")
    return texts
