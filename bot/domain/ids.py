"""Request ids: ``R-`` and 8 characters of an alphabet without look-alikes, read aloud and typed.

The one pattern every module uses to tell a well-formed id from anything else (a button value or
a typed word anyone can forge)."""

from __future__ import annotations

import re
import secrets

REQUEST_ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O/1/I: ids get read aloud
REQUEST_ID_PATTERN = re.compile(rf"R-[{REQUEST_ID_ALPHABET}]{{8}}")


def new_request_id() -> str:
    """``R-`` and 8 random characters of :data:`REQUEST_ID_ALPHABET` (40 bits)."""
    return "R-" + "".join(secrets.choice(REQUEST_ID_ALPHABET) for _ in range(8))


def is_request_id(text: str) -> bool:
    """Whether ``text`` is exactly a well-formed request id."""
    return REQUEST_ID_PATTERN.fullmatch(text) is not None
