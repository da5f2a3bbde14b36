"""Block Kit and words of the users' life after onboarding: the rotation notice, what enforcement
and a departed owner did, the unused-credentials digest, ``keys`` and the App Home's key sections.
Pure functions, no I/O; no builder ever takes a secret.

Limits honoured (Block Kit reference): section text ≤ 3,000 chars, ≤ 50 blocks a message, button
value ≤ 2,000 chars (a rotate value is ≤ 193), button text ≤ 75 chars.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slack_sdk.models.blocks import (
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.domain.lifecycle import PASSWORD, Disabled, KeyInfo, OwnedKeys, UnusedCredential, age_days, rotate_value
from bot.domain.limits import MESSAGE_BLOCKS_MAX, SECTION_TEXT_MAX
from bot.domain.records import Finding
from bot.slack.blocks import escape, mention, slack_date, truncate

ROTATE_ACTION = "rotate_access_key"  # contract, section 5
DISABLE_ACTION = "disable_iam_user"
DIGEST_USERS_MAX = MESSAGE_BLOCKS_MAX - 4  # one block a user, plus header, context and the "more" line
KEYS_LIST_MAX = 25  # users in a `keys` reply


def _section(text: str, block_id: str | None = None, accessory: ButtonElement | None = None) -> SectionBlock:
    return SectionBlock(
        block_id=block_id, text=MarkdownTextObject(text=truncate(text, SECTION_TEXT_MAX)), accessory=accessory
    )


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=truncate(text, SECTION_TEXT_MAX))])


def rotate_button(user_name: str, key_id: str, *, style: str | None = "primary") -> ButtonElement:
    """**Rotate** (``rotate_access_key``, value ``<user>|<key id>``) with a confirmation that says
    what happens to the old key."""
    return ButtonElement(
        action_id=ROTATE_ACTION,
        text="Rotate",
        value=rotate_value(user_name, key_id),
        style=style,
        confirm=ConfirmObject(
            title="Rotate this access key?",
            text=truncate(
                f"I make a new access key for {user_name} and send it in a one-time link. {key_id} keeps "
                "working until you reveal the new one; then I deactivate it.",
                300,
            ),
            confirm="Rotate",
            deny="Back",
        ),
    )


# -- rotation -------------------------------------------------------------------------------------


def rotation_notice(user_name: str, key: KeyInfo, age: int, max_age: int) -> tuple[str, list[Block]]:
    """The owner's one DM about a key due for rotation, with **Rotate**."""
    due = "is past" if age >= max_age else f"reaches {max_age} days in {max_age - age} day(s)"
    text = (
        f":key: The access key `{key.key_id}` of your IAM user `{escape(user_name)}` is *{age} days old* and "
        f"{due} the {max_age}-day limit for access keys. Rotate it: I make a new key and send it to you in a "
        "one-time link; the old key keeps working until you reveal the new one, then I switch it off."
    )
    blocks: list[Block] = [
        _section(text, "rotation_notice", rotate_button(user_name, key.key_id)),
        _context(f"Created {slack_date(key.created)}. Update every place that uses the key before you reveal."),
    ]
    return f"Access key {key.key_id} of {user_name} is {age} days old: rotate it.", blocks


def rotation_delivered(user_name: str, new_key: str, old_key: str, deleted: Sequence[str]) -> str:
    """The clicker's answer once the new key's link is on its way."""
    made_room = ""
    if deleted:
        made_room = f" To make room (IAM allows two keys a user), I deleted the unused key(s) {', '.join(deleted)}."
    return (
        f"New access key `{new_key}` for `{escape(user_name)}` is in a one-time link I just sent you.{made_room} "
        f"`{old_key}` keeps working until you reveal the new key; then I deactivate it."
    )


def rotation_completed(user_name: str, old_key: str, new_key: str | None, deactivated: bool) -> str:
    """The owner's DM when the rotation finished."""
    off = f"`{old_key}` is now inactive" if deactivated else f"`{old_key}` was gone already"
    new = f"; `{new_key}` is your key now" if new_key else ""
    return f":white_check_mark: Rotation of `{escape(user_name)}` done: {off}{new}."


def key_deactivated_for_owner(user_name: str, key_id: str, age: int, max_age: int) -> str:
    """The owner's DM when ``KEY_ROTATION_ENFORCE`` switched a key off."""
    return (
        f":no_entry: I deactivated the access key `{key_id}` of your IAM user `{escape(user_name)}`: it was "
        f"{age} days old, past the {max_age}-day limit. Whatever used it stops working. Click *Rotate* on my "
        "earlier message about it (or DM me `keys`) for a new key."
    )


def key_deactivated_for_approvers(user_name: str, key_id: str, owner: str | None, age: int, max_age: int) -> str:
    """The approvers' note when ``KEY_ROTATION_ENFORCE`` switched a key off."""
    return (
        f":no_entry: Deactivated access key `{key_id}` of IAM user `{escape(user_name)}` (owner "
        f"{mention(owner)}): {age} days old, past the {max_age}-day limit (`KEY_ROTATION_ENFORCE=true`)."
    )


# -- owners who left ------------------------------------------------------------------------------


def _disabled_words(result: Disabled | str) -> str:
    if isinstance(result, str):
        return f":x: could not be disabled: {escape(result)}"
    parts = [f"keys {', '.join(f'`{k}`' for k in result.keys)} made inactive"] if result.keys else []
    parts += ["console password deleted"] if result.login_profile else []
    return "; ".join(parts) or "no active credential was left"


def owner_left(owner: str, results: dict[str, Disabled | str], source: str) -> tuple[str, list[Block]]:
    """The approvers' message when an owner's Slack account was deactivated and their users disabled."""
    how = "a Slack `user_change` event" if source == "event" else "the periodic check (`users.info`)"
    lines = [f"• `{escape(name)}`: {_disabled_words(result)}" for name, result in results.items()]
    text = (
        f":bust_in_silhouette: {mention(owner)}'s Slack account was deactivated (seen by {how}). Their IAM "
        f"users are disabled and kept:\n" + "\n".join(lines)
    )
    hint = "Delete them with `/iam-user remove` once nobody needs them, or give them a new owner in IAM."
    return f"The owner {owner} left: their IAM users were disabled.", [_section(text, "owner_left"), _context(hint)]


# -- unused credentials ---------------------------------------------------------------------------


def _unused_line(item: UnusedCredential) -> str:
    what = "console password" if item.credential == PASSWORD else f"access key `{item.credential}`"
    since = "never used since made" if item.never_used else "last used"
    return f"{what}: {since} {slack_date(item.since)} ({item.days} days)"


def unused_digest(found: Sequence[UnusedCredential], unused_days: int, more: int = 0) -> tuple[str, list[Block]]:
    """One digest for the approvers: each user with credentials unused ``unused_days`` days or more,
    with **Disable** (``disable_iam_user``, value the user name; approvers only)."""
    by_user: dict[str, list[UnusedCredential]] = {}
    for item in found:
        by_user.setdefault(item.user_name, []).append(item)
    blocks: list[Block] = [
        _section(f":zzz: *Credentials unused for {unused_days} days or more* (CIS AWS Foundations 1.12)", "unused")
    ]
    for number, (user_name, items) in enumerate(by_user.items()):
        owner = items[0].owner
        text = f"*`{escape(user_name)}`* (owner {mention(owner)})\n" + "\n".join(_unused_line(i) for i in items)
        button = ButtonElement(
            action_id=DISABLE_ACTION,
            text="Disable",
            value=user_name,
            style="danger",
            confirm=ConfirmObject(
                title="Disable this IAM user?",
                text=truncate(f"Makes every access key of {user_name} inactive and deletes its console password.", 300),
                confirm="Disable",
                deny="Back",
            ),
        )
        blocks.append(_section(text, f"unused_{number}", button))
    if more:
        blocks.append(_context(f"…and {more} more user(s): the next check lists them."))
    blocks.append(_context("Disabling keeps the user; `/iam-user remove` deletes it."))
    return f"{len(by_user)} IAM user(s) with credentials unused for {unused_days}+ days.", blocks


def disabled_by(user_name: str, actor: str, result: Disabled) -> str:
    """The note (in the digest's thread) and the clicker's answer after **Disable**."""
    return f"{mention(actor)} disabled `{escape(user_name)}`: {_disabled_words(result)}."


# -- keys, DM and App Home ------------------------------------------------------------------------


def key_line(key: KeyInfo, now: datetime, max_age: int) -> str:
    """One key: id, status, age in days (and a warning past the limit)."""
    age = age_days(key.created, now)
    late = f" :warning: past {max_age} days" if key.active and age >= max_age else ""
    return f"`{key.key_id}` {key.status}, {age} days old{late}"


def keys_reply(owned: Sequence[OwnedKeys], now: datetime, max_age: int) -> str:
    """The answer to ``keys``: the asker's bot-made users, each key's id, status and age in days."""
    if not owned:
        return "You own no IAM user that I made. (`status` lists your requests.)"
    lines = []
    for user in owned[:KEYS_LIST_MAX]:
        keys = "; ".join(key_line(k, now, max_age) for k in user.keys) or "no access keys"
        lines.append(f"• `{escape(user.user_name)}`: {keys}")
    more = f"\n…and {len(owned) - KEYS_LIST_MAX} more." if len(owned) > KEYS_LIST_MAX else ""
    hint = "\nThe *Rotate* buttons are on my App Home tab (and on my rotation reminders)."
    return truncate("*Your IAM users and their access keys:*\n" + "\n".join(lines) + more + hint, SECTION_TEXT_MAX)


def home_key_blocks(owned: Sequence[OwnedKeys], now: datetime, max_age: int, limit: int) -> list[Block]:
    """The viewer's users and keys in the App Home, an active key with **Rotate**; at most ``limit``
    blocks."""
    if not owned:
        return []
    blocks: list[Block] = [_section("*Your IAM users and access keys*", "my_keys")]
    for u, user in enumerate(owned):
        if not user.keys:
            blocks.append(_section(f"`{escape(user.user_name)}`: no access keys", f"my_user_{u}"))
        for k, key in enumerate(user.keys):
            button = rotate_button(user.user_name, key.key_id, style=None) if key.active else None
            text = f"`{escape(user.user_name)}` · {key_line(key, now, max_age)}"
            blocks.append(_section(text, f"my_key_{u}_{k}", button))
    if len(blocks) > limit:
        blocks = [*blocks[: limit - 1], _context("…and more: DM me `keys`.")]
    return blocks


def home_findings_blocks(due: Sequence[Finding], left: Sequence[Finding], limit: int) -> list[Block]:
    """For approvers: keys due for rotation and owners who left (open findings), at most ``limit``."""
    blocks: list[Block] = []
    if due:
        lines = [
            f"• `{escape(str(f.detail.get('user_name')))}` key `{f.subject}` (owner "
            f"{mention(str(f.detail.get('owner') or '') or None)}): {f.detail.get('age_days')} days old when "
            f"noticed {slack_date(f.created_at)}"
            for f in due
        ]
        blocks.append(_section("*Keys due for rotation*\n" + "\n".join(lines), "due_keys"))
    if left:
        lines = [
            f"• {mention(f.subject)}, deactivated in Slack: "
            f"{', '.join(f'`{escape(str(n))}`' for n in f.detail.get('user_names', []))} disabled "
            f"{slack_date(f.created_at)}"
            for f in left
        ]
        blocks.append(_section("*Owners who left*\n" + "\n".join(lines), "owners_left"))
    return blocks[:limit]
