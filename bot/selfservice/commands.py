"""The self-service words, parsed: ``status``, ``status <id>``, ``pending``, ``cancel <id>``, ``keys``,
``help`` (and ``new``, ``remove``, which open forms). Pure: no I/O.

The same words work in a direct message to the bot and after ``/iam-user``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.ids import REQUEST_ID_PATTERN

VERBS = frozenset({"new", "status", "pending", "cancel", "keys", "remove", "help"})
# Characters people wrap an id in when they paste it: code spans, bold, quotes, punctuation.
ID_WRAPPING = "`*_~'\"<>()[]{}.,;:!?"


@dataclass(frozen=True)
class Command:
    """A parsed message: ``verb`` is one of :data:`VERBS`, ``""`` for an empty message, or
    ``"unknown"``; ``argument`` is the first word after the verb as typed (or None);
    ``request_id`` is that word as a well-formed request id, or None when it is not one."""

    verb: str
    argument: str | None = None
    request_id: str | None = None


def normalize_request_id(word: str) -> str | None:
    """``word`` as a request id (``R-`` + 8 of :data:`~bot.domain.ids.REQUEST_ID_ALPHABET`), or None.

    Case, surrounding punctuation or code marks, and a missing ``R-`` are tolerated:
    `` `r-7kq2m9xd`. `` and ``7KQ2M9XD`` both give ``R-7KQ2M9XD``.
    """
    candidate = word.strip(ID_WRAPPING).upper()
    if not candidate.startswith("R-"):
        candidate = "R-" + candidate
    return candidate if REQUEST_ID_PATTERN.fullmatch(candidate) else None


def parse_command(text: str) -> Command:
    """Split a message into verb and argument; case and any whitespace are tolerated.

    Slack sends a DM's text with mrkdwn marks and may use non-breaking spaces; a leading
    mention of the bot (``<@U…>``) is skipped so "@iam-user-bot status" works too.
    """
    words = text.split()  # str.split() without arguments splits on every Unicode space
    while words and words[0].startswith("<@") and words[0].endswith(">"):
        words = words[1:]
    if not words:
        return Command("")
    verb = words[0].strip(ID_WRAPPING).lower()
    if verb not in VERBS:
        return Command("unknown", words[0])
    argument = words[1] if len(words) > 1 else None
    return Command(verb, argument, normalize_request_id(argument) if argument else None)
