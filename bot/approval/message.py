"""The approvers' channel message, re-rendered on every state change. Pure: no I/O.

It shows what approvers judge (requester, recipients, user names, access, the concrete
permissions with "copy from user" expanded, boundary, tags, justification), the risk flags, the
approvals so far, the equivalent AWS CLI, and then the decision and provisioning outcome.

Slack limits honoured (Block Kit reference): section text ≤ 3,000 characters, ≤ 50 blocks a
message, header text ≤ 150 characters. Long parts are split on line boundaries into several
sections. The CLI is shown command by command, never cut inside one: a command too long for a
section, or past the message's room (:data:`bot.domain.limits.MESSAGE_CODE_CHARS`), is named in a
note that says where the whole script is (the ``status <id>`` answer).
"""

from __future__ import annotations

from datetime import datetime

from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.domain import plan_text
from bot.domain.limits import MESSAGE_BLOCKS_MAX, MESSAGE_CODE_CHARS, SECTION_TEXT_MAX
from bot.domain.models import OnboardingRequest, PermissionExpansion, PermissionMode, RemoveMode, Review, UserHoldings
from bot.domain.plan import build_plan
from bot.domain.plan_text import Script
from bot.domain.removal import removal_plan
from bot.domain.states import RequestStatus
from bot.slack.blocks import escape, mention, slack_date, truncate
from bot.slack.code_blocks import script_blocks
from bot.slack.request_blocks import code_list, decision_buttons, summary_text
from bot.slack.wording import removal_verb, status_words

DENY_CALLBACK_ID = "deny_reason"
APPROVER_PLACEHOLDER = "<approver>"


# -- the equivalent AWS CLI ------------------------------------------------------------------------


def cli_script_for(request: OnboardingRequest, expansion: PermissionExpansion) -> Script:
    """The ``aws iam …`` script (:mod:`bot.domain.plan_text`) of the plan :func:`bot.domain.plan.build_plan`
    (or, for a removal, :func:`bot.domain.removal.removal_plan`) makes from the stored expansion;
    empty when the expansion could not be read."""
    if expansion.error:
        return Script()
    if request.form.is_removal:
        return plan_text.preview(removal_plan(expansion.holdings, RemoveMode(str(request.form.remove_mode))))
    try:
        steps = build_plan(
            request,
            approver=request.decided_by or APPROVER_PLACEHOLDER,
            account_id=expansion.account_id or "<account-id>",
            copy_source=expansion.copy_source,
            users_may_change_password=expansion.users_may_change_password,
        )
    except ValueError:
        return Script()
    return plan_text.preview(steps)


def whole_script_hint(request_id: str) -> str:
    """Where the whole script is, as the end of a sentence."""
    return f"DM me `status {request_id}` for the whole script"


# -- splitting to fit Slack -----------------------------------------------------------------------


def split_text(text: str, limit: int = SECTION_TEXT_MAX) -> list[str]:
    """``text`` as pieces of at most ``limit`` characters, cut between lines where possible
    (a single longer line is truncated with an ellipsis)."""
    pieces: list[str] = []
    current = ""
    for line in text.split("\n"):
        line = truncate(line, limit)
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current or not pieces:
        pieces.append(current)
    return pieces


def _sections(text: str, block_id: str) -> list[Block]:
    return [
        SectionBlock(block_id=f"{block_id}_{i}" if i else block_id, text=MarkdownTextObject(text=piece))
        for i, piece in enumerate(split_text(text))
    ]


def _cli_blocks(request: OnboardingRequest, script: Script, budget: int) -> list[Block]:
    """The title with the notes, then the commands (:func:`bot.slack.code_blocks.script_blocks`):
    never a command cut; what does not fit is named, with where the whole script is."""
    where = whole_script_hint(request.id)
    title = " ".join(["*Equivalent AWS CLI*", *script.notes, f"{where[0].upper()}{where[1:]}."])
    header = ContextBlock(block_id="cli_title", elements=[MarkdownTextObject(text=truncate(title, SECTION_TEXT_MAX))])
    shown = script_blocks(
        script.lines, most_blocks=budget - 1, most_chars=MESSAGE_CODE_CHARS, whole_script=where, block_id="cli"
    )
    return [header, *shown.blocks]


# -- the content ----------------------------------------------------------------------------------


def _holding_line(held: UserHoldings) -> str:
    things = held.left()
    return f"• `{escape(held.user_name)}` (owner {mention(held.owner)}): " + (
        "; ".join(escape(t) for t in things) if things else "nothing but the user"
    )


def _holdings(expansion: PermissionExpansion) -> str:
    """What each user of a removal holds now (read from IAM when it was filed)."""
    lines = ["*What the users hold now*"]
    if expansion.error:
        lines.append(f":x: could not be read from IAM: {escape(expansion.error)}")
    lines += [_holding_line(held) for held in expansion.holdings]
    for group in expansion.groups:
        lines.append(f"• group `{escape(group.name)}` grants {code_list([p.name for p in group.managed_policies])}")
    return "\n".join(lines)


def _permissions(request: OnboardingRequest, expansion: PermissionExpansion) -> str:
    if request.form.is_removal:
        return _holdings(expansion)
    form = request.form
    lines: list[str] = []
    if form.permission_mode is PermissionMode.COPY_USER:
        lines.append(f"*Permissions* copied from IAM user `{escape(form.copy_from_user or '')}`, as it holds them now:")
    elif form.permission_mode is PermissionMode.POLICIES:
        lines.append("*Permissions* managed policies attached directly:")
    else:
        lines.append("*Permissions* membership of IAM groups:")
    if expansion.error:
        lines.append(f":x: could not be read from IAM: {escape(expansion.error)}")
    for group in expansion.groups:
        inline = f"; inline {code_list(group.inline_policy_names)}" if group.inline_policy_names else ""
        policies = code_list([p.name for p in group.managed_policies])
        lines.append(f"• group `{escape(group.name)}`: policies {policies}{inline}")
    lines.extend(f"• policy `{escape(p.name)}` (`{escape(p.arn)}`)" for p in expansion.managed_policies)
    lines.extend(f"• inline policy `{escape(p.name)}` (copied document)" for p in expansion.inline_policies)
    if not (expansion.groups or expansion.managed_policies or expansion.inline_policies or expansion.error):
        lines.append("• none")
    if form.mfa_required or form.self_manage_credentials:
        wanted = (("require MFA", form.mfa_required), ("self-manage", form.self_manage_credentials))
        bot_policies = [name for name, on in wanted if on]
        lines.append(f"• bot policies: {', '.join(bot_policies)}")
    boundary = expansion.permissions_boundary_arn
    lines.append(f"*Permissions boundary* {f'`{escape(boundary)}`' if boundary else 'none'}")
    tags = [f"{t.key}={t.value}" for t in form.tags]
    lines.append(
        f"*Tags* {code_list(tags)} (plus the bot's managed, owner, request-id, requested-by, approved-by tags)"
    )
    return "\n".join(lines)


def _flags(review: Review) -> str | None:
    if not review.flags:
        return None
    lines = [f"{':rotating_light:' if flag.sensitive else ':warning:'} {escape(flag.text)}" for flag in review.flags]
    if review.approvals_required > 1:
        lines.insert(0, f"*Needs {review.approvals_required} distinct approvers.*")
    return "\n".join(lines)


def _approvals(request: OnboardingRequest, review: Review, expires_at: datetime | None) -> str:
    done = ", ".join(f"{mention(a.approver)} {slack_date(a.at)}" for a in review.approvals) or "none yet"
    line = f"*Approvals* {len(review.approvals)} of {review.approvals_required}: {done}"
    if request.status is RequestStatus.PENDING and expires_at is not None:
        line += f"\n*Expires* {slack_date(expires_at)} unless decided"
    return line


def outcome_line(
    request: OnboardingRequest, review: Review | None, progress: tuple[int, int] | None = None
) -> str | None:
    """Who decided and when, and what came of it; None while pending.

    ``progress``: ``(steps done, steps planned)`` while provisioning runs.
    """
    status = request.status
    when = slack_date(request.decided_at) if request.decided_at else ""
    if status is RequestStatus.PENDING:
        return None
    if status is RequestStatus.DENIED:
        reason = f": {escape(request.reason)}" if request.reason else ""
        return f":no_entry: Denied by {mention(request.decided_by)} {when}{reason}"
    if status is RequestStatus.CANCELLED:
        return f":heavy_multiplication_x: Cancelled by the requester {slack_date(request.updated_at)}"
    if status is RequestStatus.EXPIRED:
        return f":hourglass: Expired without a decision {slack_date(request.updated_at)}"
    approvers = list(review.approvers) if review and review.approvals else [request.decided_by]
    approved = f":white_check_mark: Approved by {' and '.join(mention(a) for a in approvers)} {when}"
    if request.form.is_removal:
        return approved + _removal_outcome(request, progress)
    if status is RequestStatus.APPROVED:
        return approved + "\n:hourglass_flowing_sand: Provisioning is about to start…"
    if status is RequestStatus.PROVISIONING:
        steps = f" ({progress[0]} of {progress[1]} IAM steps done)" if progress else ""
        return approved + f"\n:gear: Creating the IAM users…{steps}"
    if status is RequestStatus.PROVISIONED:
        created = slack_date(request.updated_at)
        return approved + f"\n:tada: IAM users created {created}; credentials sent by one-time link"
    return (
        approved + f"\n:x: Provisioning failed, {request.failure_outcome}: {escape(request.error or 'unknown error')}"
    )


def _removal_outcome(request: OnboardingRequest, progress: tuple[int, int] | None) -> str:
    """The line after "Approved by …" on a removal request."""
    if request.status is RequestStatus.APPROVED:
        return "\n:hourglass_flowing_sand: The removal is about to start…"
    if request.status is RequestStatus.PROVISIONING:
        steps = f" ({progress[0]} of {progress[1]} IAM steps done)" if progress else ""
        return f"\n:gear: Removing the IAM users…{steps}"
    if request.status is RequestStatus.PROVISIONED:
        return f"\n:wastebasket: IAM users {removal_verb(request)} {slack_date(request.updated_at)}"
    return f"\n:x: The removal failed: {escape(request.error or 'unknown error')}"


def approval_message(
    request: OnboardingRequest,
    review: Review,
    script: Script,
    expires_at: datetime | None = None,
    progress: tuple[int, int] | None = None,
) -> tuple[str, list[Block]]:
    """The approval message: ``(fallback text, blocks)``, at most 50 blocks.

    Args:
        review: the stored expansion, flags and approvals (:meth:`bot.storage.base.Store.get_review`).
        script: the plan as ``aws iam …`` lines with their notes (:func:`cli_script_for`).
        expires_at: when a pending request expires (``PENDING_REQUEST_TTL_SECONDS`` after filing).
        progress: ``(steps done, steps planned)`` while provisioning runs (from the journal).

    Buttons ``approve_request`` / ``deny_request`` (value: the request id) are shown only while
    the request is pending; Approve is left out when IAM could not be read.
    """
    kind = "IAM user removal" if request.form.is_removal else "IAM user request"
    head: list[Block] = [HeaderBlock(block_id="title", text=truncate(f"{kind} {request.id}", 150))]
    if flags := _flags(review):
        head += _sections(flags, "flags")
    head += _sections(summary_text(request), "summary")
    head += _sections(_permissions(request, review.expansion), "permissions")
    approvals = _approvals(request, review, expires_at)
    head.append(SectionBlock(block_id="approvals", text=MarkdownTextObject(text=approvals)))
    tail: list[Block] = [DividerBlock(block_id="end")]
    if request.status is RequestStatus.PENDING:
        tail.append(decision_buttons(request, review))
    elif line := outcome_line(request, review, progress):
        tail.append(SectionBlock(block_id="outcome", text=MarkdownTextObject(text=truncate(line, SECTION_TEXT_MAX))))
    budget = MESSAGE_BLOCKS_MAX - len(head) - len(tail)
    cli = _cli_blocks(request, script, budget) if script.lines and budget > 2 else []
    blocks = head + cli + tail
    if len(blocks) > MESSAGE_BLOCKS_MAX:  # only with absurd content: keep the decision part visible
        blocks = blocks[: MESSAGE_BLOCKS_MAX - len(tail)] + tail
    sensitive = " [sensitive]" if review.sensitive else ""
    text = f"{kind} {request.id}{sensitive} from {mention(request.requester)}: {status_words(request)}"
    return text, blocks


# -- the deny reason modal -----------------------------------------------------------------------


def deny_reason_modal(request_id: str, channel: str | None) -> View:
    """The modal asking an approver why they deny (block ``reason``, contract "Approval")."""
    return View(
        type="modal",
        callback_id=DENY_CALLBACK_ID,
        private_metadata=f"{request_id}|{channel or ''}",
        title=PlainTextObject(text="Deny request"),
        submit=PlainTextObject(text="Deny"),
        close=PlainTextObject(text="Back"),
        blocks=[
            InputBlock(
                block_id="reason",
                label=f"Why deny {request_id}?",
                hint="The requester sees this.",
                element=PlainTextInputElement(action_id="reason", multiline=True, max_length=1000),
            )
        ],
    )


def parse_deny_metadata(metadata: str) -> tuple[str, str | None]:
    """Inverse of the ``private_metadata`` :func:`deny_reason_modal` sets: ``(request id, channel)``."""
    request_id, _, channel = metadata.partition("|")
    return request_id, channel or None
