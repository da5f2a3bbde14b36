"""Block Kit for one-time credential links: delivery, notices, alerts. Pure functions, no I/O.

No builder here ever takes a password, a secret access key or a link key, except
:func:`link_message`, whose link (with its key) goes only into the recipient's ephemeral
message, inside a button so Slack never unfurls it. Limits honoured: section text ≤ 3,000
chars, button value ≤ 2,000 chars (a secret id is 24), button text ≤ 75 chars.
"""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot.slack.blocks import mention, slack_date

RESEND_ACTION = "resend_credential_link"
ROTATE_ACTION = "rotate_credentials"
REISSUE_ACTION = "reissue_credentials"
OPEN_LINK_ACTION = "open_credential_link"


def _section(text: str, block_id: str | None = None) -> SectionBlock:
    return SectionBlock(block_id=block_id, text=MarkdownTextObject(text=text))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


def link_message(user_name: str, link: str, console_url: str | None, expires_at: datetime) -> tuple[str, list[Block]]:
    """The recipient's ephemeral message: the one-time link in a button, plus user name,
    console sign-in URL and expiry. The fallback text holds no link."""
    details = [f"*IAM user* `{user_name}`"]
    if console_url:
        details.append(f"*Console sign-in* {console_url}")
    details.append(f"*Link expires* {slack_date(expires_at)}")
    blocks: list[Block] = [
        _section(":key: Your AWS credentials are ready.\n" + "\n".join(details)),
        ActionsBlock(
            block_id="credential_link",
            elements=[ButtonElement(action_id=OPEN_LINK_ACTION, text="Open one-time link", url=link, style="primary")],
        ),
        _context(
            "Open it in your browser and click *Reveal*: the values are shown once. "
            "Don't forward or paste the link anywhere. A new access key can take a minute to start working."
        ),
    ]
    return f"Your AWS credentials for IAM user {user_name} are ready: open the one-time link.", blocks


def ready_notice(user_name: str, request_id: str, secret_id: str, expires_at: datetime) -> tuple[str, list[Block]]:
    """The persistent DM (no link) that survives a reload, with **Send a new link**
    (``resend_credential_link``, value = the secret id)."""
    text = (
        f":key: IAM user `{user_name}` is ready (request `{request_id}`). I sent you a one-time link in a "
        f"private message just now. It disappears when you reload Slack and expires {slack_date(expires_at)}."
    )
    blocks: list[Block] = [
        _section(text),
        ActionsBlock(
            block_id="credential_notice",
            elements=[
                ButtonElement(
                    action_id=RESEND_ACTION,
                    text="Send a new link",
                    value=secret_id,
                    confirm=ConfirmObject(
                        title="Send a new link?",
                        text="This makes new credentials (a new access key and a new password) and a new "
                        "one-time link. The old link and the old credentials stop working.",
                        confirm="Send a new link",
                        deny="Back",
                    ),
                )
            ],
        ),
        _context("Lost the link before opening it? *Send a new link* works until you reveal the credentials."),
    ]
    return f"IAM user {user_name} is ready (request {request_id}).", blocks


def notice_after(user_name: str, request_id: str, what: str) -> tuple[str, list[Block]]:
    """The persistent DM notice once its link is used up (no button): ``what`` happened."""
    text = f":key: IAM user `{user_name}` (request `{request_id}`): {what}"
    return f"IAM user {user_name}: {what}", [_section(text)]


def revealed_words(revealed_at: datetime) -> str:
    return (
        f"the one-time link was opened and revealed {slack_date(revealed_at)}. "
        "If that was not you, tell the approvers at once."
    )


def superseded_words() -> str:
    return "this link was replaced by a new one (see the newer message); the old credentials no longer work."


def disabled_words(access_key: bool, console: bool) -> str:
    """What expiry switched off, in words: "Its access key is deactivated and …"."""
    parts = (["its access key is deactivated"] if access_key else []) + (
        ["its console password was replaced by one nobody knows"] if console else []
    )
    return (" and ".join(parts) or "nothing was left to switch off").capitalize() + "."


def expired_words(access_key: bool, console: bool) -> str:
    return (
        f"the one-time link expired unopened. {disabled_words(access_key, console)} "
        "An approver can re-issue the credentials."
    )


def reuse_alert_for_recipient(user_name: str, request_id: str) -> str:
    """DM to the recipient when someone tries their already revealed link again."""
    return (
        f":rotating_light: Someone just tried to open the one-time link for IAM user `{user_name}` "
        f"(request `{request_id}`) again, after it had been revealed. If you revealed it yourself and "
        "opened it again, all is well. If you never saw the credentials, someone else may have them: the "
        "approvers have been alerted and can rotate them."
    )


def reuse_alert_for_approvers(
    secret_id: str, user_name: str, recipient: str, request_id: str, revealed_at: datetime | None
) -> tuple[str, list[Block]]:
    """The approvers' channel alert (possible interception) with **Rotate credentials**."""
    when = f" (revealed {slack_date(revealed_at)})" if revealed_at else ""
    text = (
        f":rotating_light: *Possible interception.* The one-time link of IAM user `{user_name}` for "
        f"{mention(recipient)} (request `{request_id}`) was opened again after it had been revealed{when}. "
        f"If {mention(recipient)} did not reveal it, rotate the credentials: a new access key replaces the "
        "old one, the console password is reset, and a new link goes to the recipient."
    )
    blocks: list[Block] = [
        _section(text, block_id="reuse_alert"),
        ActionsBlock(
            block_id="rotate",
            elements=[
                ButtonElement(
                    action_id=ROTATE_ACTION,
                    text="Rotate credentials",
                    value=secret_id,
                    style="danger",
                    confirm=ConfirmObject(
                        title="Rotate credentials?",
                        text=f"Deletes the access key of {user_name}, sets a new console password, and sends "
                        "a new one-time link to the recipient.",
                        confirm="Rotate",
                        deny="Back",
                    ),
                )
            ],
        ),
    ]
    return f"Possible interception of the credentials of IAM user {user_name} (request {request_id}).", blocks


def expiry_notice(
    user_name: str, recipient: str, request_id: str, *, for_requester: bool, access_key: bool, console: bool
) -> str:
    """DM to the recipient or the requester when a link expired unopened."""
    whose = f"for {mention(recipient)} " if for_requester else ""
    return (
        f":hourglass: The one-time link of IAM user `{user_name}` {whose}(request `{request_id}`) expired "
        f"unopened. {disabled_words(access_key, console)} An approver can re-issue the credentials with a new link."
    )


def expiry_for_approvers(
    secret_id: str, user_name: str, recipient: str, request_id: str, *, access_key: bool, console: bool
) -> tuple[str, list[Block]]:
    """The approvers' note on an unopened, expired link, with **Re-issue credentials**."""
    text = (
        f":hourglass: The one-time link of IAM user `{user_name}` for {mention(recipient)} (request "
        f"`{request_id}`) expired unopened. {disabled_words(access_key, console)} "
        "Re-issue to send new credentials in a new link."
    )
    blocks: list[Block] = [
        _section(text, block_id="link_expired"),
        ActionsBlock(
            block_id="reissue",
            elements=[
                ButtonElement(
                    action_id=REISSUE_ACTION,
                    text="Re-issue credentials",
                    value=secret_id,
                    confirm=ConfirmObject(
                        title="Re-issue credentials?",
                        text=f"Makes new credentials for {user_name} (a new access key and/or console password) "
                        "and sends a new one-time link to the recipient.",
                        confirm="Re-issue",
                        deny="Back",
                    ),
                )
            ],
        ),
    ]
    return f"The one-time link of IAM user {user_name} (request {request_id}) expired unopened.", blocks


def reissued_by(user_name: str, actor: str, request_id: str) -> tuple[str, list[Block]]:
    """Replaces an alert or expiry note once an approver re-issued (its button is gone)."""
    text = (
        f":white_check_mark: {mention(actor)} re-issued the credentials of IAM user `{user_name}` "
        f"(request `{request_id}`): new access key, new console password, new one-time link sent."
    )
    return f"Credentials of IAM user {user_name} re-issued.", [_section(text)]
