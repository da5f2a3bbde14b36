"""Block Kit for one-time links: pure builders, checked without Slack."""

from __future__ import annotations

import json

from bot.credentials import messages as link_blocks
from bot.domain.models import utcnow

LINK = "https://bot.example.com/credentials/ABCDEFGHabcdefgh12345678#" + "k" * 43


def dump(blocks) -> str:
    return json.dumps([b.to_dict() for b in blocks])


def test_the_link_sits_only_in_a_button_of_the_ephemeral_message() -> None:
    text, blocks = link_blocks.link_message(
        "nina", LINK, "https://123456789012.signin.aws.amazon.com/console", utcnow()
    )
    assert LINK not in text
    rendered = [b.to_dict() for b in blocks]
    buttons = [e for b in rendered if b["type"] == "actions" for e in b["elements"]]
    assert [(b["action_id"], b["url"]) for b in buttons] == [("open_credential_link", LINK)]
    sections = json.dumps([b for b in rendered if b["type"] != "actions"])
    assert LINK not in sections and "nina" in sections and "signin.aws.amazon.com" in sections


def test_the_persistent_notice_has_no_link_and_a_resend_button_for_its_secret() -> None:
    text, blocks = link_blocks.ready_notice("nina", "R-ABCD2345", "ABCDEFGHabcdefgh12345678", utcnow())
    rendered = dump(blocks)
    assert "/credentials/" not in rendered + text
    buttons = [e for b in blocks if b.type == "actions" for e in b.elements]
    assert [(b.action_id, b.value) for b in buttons] == [("resend_credential_link", "ABCDEFGHabcdefgh12345678")]


def test_alert_and_expiry_notes_carry_their_approver_buttons() -> None:
    _, alert = link_blocks.reuse_alert_for_approvers("S" * 24, "nina", "U0NEWHIRE1", "R-ABCD2345", utcnow())
    _, expiry = link_blocks.expiry_for_approvers(
        "T" * 24, "nina", "U0NEWHIRE1", "R-ABCD2345", access_key=True, console=False
    )
    assert '"action_id": "rotate_credentials"' in dump(alert) and "S" * 24 in dump(alert)
    assert '"action_id": "reissue_credentials"' in dump(expiry) and "T" * 24 in dump(expiry)
    assert "access key is deactivated" in dump(expiry[:1]) and "console password" not in dump(expiry[:1])


def test_expiry_words_name_what_was_switched_off() -> None:
    assert link_blocks.disabled_words(True, True) == (
        "Its access key is deactivated and its console password was replaced by one nobody knows."
    )
    assert link_blocks.disabled_words(False, True).startswith("Its console password")
    notice = link_blocks.expiry_notice(
        "nina", "U0NEWHIRE1", "R-ABCD2345", for_requester=True, access_key=False, console=True
    )
    assert "<@U0NEWHIRE1>" in notice and "access key" not in notice
