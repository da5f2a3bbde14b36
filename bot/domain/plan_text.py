"""How a plan reads for people: the AWS CLI command and the review heading of each step kind.
Pure: no I/O.

Shown in the request wizard's review and in the approval message, so that a reviewer sees the
exact IAM calls in the form they already know. No secret ever appears: passwords and access
keys are made while the plan runs, so the password is the shell variable ``$PASSWORD`` and an
access key is what ``create-access-key`` answers. Every argument is shell-quoted
(:func:`shlex.quote`), so a line pasted into a POSIX shell runs the call it shows.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence

from bot.domain.plan import USER_PATH, Step, StepKind

PASSWORD_PLACEHOLDER = "$PASSWORD"  # noqa: S105 - a shell variable name, not a password
POLICY_DOCUMENT_DIR = "bot/policies"


def _command(*words: str) -> str:
    return " ".join(shlex.quote(word) for word in words)


def _tags_json(step: Step) -> str:
    """Tags in the CLI's JSON form: unlike the ``Key=…,Value=…`` shorthand it survives commas."""
    return json.dumps([{"Key": t.key, "Value": t.value} for t in step.tags], ensure_ascii=False, separators=(",", ":"))


def _ensure_bot_policy(step: Step) -> str:
    name = step.target or ""
    return (
        _command("aws", "iam", "create-policy", "--policy-name", name, "--policy-document")
        + f" file://{POLICY_DOCUMENT_DIR}/{shlex.quote(name)}.json  # only if the account has none yet"
    )


def _create_user(step: Step) -> str:
    words = ["aws", "iam", "create-user", "--user-name", step.user_name, "--path", USER_PATH]
    if step.permissions_boundary_arn:
        words += ["--permissions-boundary", step.permissions_boundary_arn]
    if step.tags:
        words += ["--tags", _tags_json(step)]
    return _command(*words)


def _create_login_profile(step: Step) -> str:
    reset = "--password-reset-required" if step.password_reset_required else "--no-password-reset-required"
    return (
        _command("aws", "iam", "create-login-profile", "--user-name", step.user_name, "--password")
        + f' "{PASSWORD_PLACEHOLDER}" {reset}'
    )


def _create_access_key(step: Step) -> str:
    return _command("aws", "iam", "create-access-key", "--user-name", step.user_name)


def _add_user_to_group(step: Step) -> str:
    return _command("aws", "iam", "add-user-to-group", "--user-name", step.user_name, "--group-name", step.target or "")


def _attach_user_policy(step: Step) -> str:
    return _command(
        "aws", "iam", "attach-user-policy", "--user-name", step.user_name, "--policy-arn", step.target or ""
    )


def _put_user_policy(step: Step) -> str:
    """Reads the inline document from the source user with a nested ``get-user-policy``, which
    is what the bot copies."""
    name, source = step.target or "", step.source_user or ""
    read = _command(
        "aws", "iam", "get-user-policy", "--user-name", source, "--policy-name", name,
        "--query", "PolicyDocument", "--output", "json",
    )  # fmt: skip
    put = _command("aws", "iam", "put-user-policy", "--user-name", step.user_name, "--policy-name", name)
    return put + f' --policy-document "$({read})"'


# The CLI preview's table: the ``aws iam …`` line of each step kind (a test checks none is missing).
CLI_COMMANDS: Mapping[StepKind, Callable[[Step], str]] = {
    StepKind.ENSURE_BOT_POLICY: _ensure_bot_policy,
    StepKind.CREATE_USER: _create_user,
    StepKind.CREATE_LOGIN_PROFILE: _create_login_profile,
    StepKind.CREATE_ACCESS_KEY: _create_access_key,
    StepKind.ADD_USER_TO_GROUP: _add_user_to_group,
    StepKind.ATTACH_USER_POLICY: _attach_user_policy,
    StepKind.PUT_USER_POLICY: _put_user_policy,
}

# The review's table: under which heading of "Each user gets" a step kind's target is listed,
# or None where the review shows the kind elsewhere (the users list and their access, the
# boundary and tags of create_user, the "Also" line of the bot-managed policies).
REVIEW_HEADINGS: Mapping[StepKind, str | None] = {
    StepKind.ENSURE_BOT_POLICY: None,
    StepKind.CREATE_USER: None,
    StepKind.CREATE_LOGIN_PROFILE: None,
    StepKind.CREATE_ACCESS_KEY: None,
    StepKind.ADD_USER_TO_GROUP: "Groups",
    StepKind.ATTACH_USER_POLICY: "Managed policies",
    StepKind.PUT_USER_POLICY: "Inline policies",
}


def step_command(step: Step) -> str:
    """One ``aws iam …`` line for ``step`` (:data:`CLI_COMMANDS`). ``create-login-profile`` takes
    ``"$PASSWORD"`` (set by the reader, never a real password)."""
    return CLI_COMMANDS[step.kind](step)


def cli_lines(steps: Iterable[Step]) -> list[str]:
    """One command per step, in the plan's order (which is the order IAM needs)."""
    return [step_command(step) for step in steps]


def cli_script(steps: Sequence[Step]) -> str:
    """The commands as one text, with a first line saying where ``$PASSWORD`` comes from when a
    login profile is made. Meant for a code block; callers cut it to their size limit."""
    lines = cli_lines(steps)
    if any(step.kind is StepKind.CREATE_LOGIN_PROFILE for step in steps):
        lines.insert(0, "# PASSWORD: generated (or the requester's custom one) when the plan runs; never shown here")
    return "\n".join(lines)
