"""How a plan reads for people: the AWS CLI commands and the review heading of each step kind.
Pure: no I/O.

Shown in the request wizard's review, in the approval message and, whole, in the ``status <id>``
answer, so that a reviewer sees the exact IAM calls in the form they already know, and can run
them. The lines run as shown when pasted into bash or zsh (macOS's default shell, whose
interactive mode does not take ``#`` as a comment), and make what the bot makes:

- no comments and no line a shell could read differently: every word is quoted for both shells
  (:func:`shell_word`), a value starting with ``-`` is joined to its option (``--user-name=-gina``;
  the CLI would take ``-gina`` for an option of its own);
- a bot-managed policy is created only when absent (``get-policy … || create-policy …``), from
  the document ``iam-user-bot policy <name>`` prints, with the description and tags the bot gives
  it, so the bot adopts it afterwards;
- no secret: the password is the shell variable ``$PASSWORD`` (the reader sets it; see
  :func:`script_notes`), an access key is what ``create-access-key`` answers.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.domain.plan import BOT_POLICY_DESCRIPTIONS, BOT_POLICY_SHORT_NAMES, STEP_KINDS, USER_PATH, Step, StepKind

PASSWORD_VARIABLE = "PASSWORD"  # noqa: S105 - a shell variable's name, not a password


def shell_word(word: str) -> str:
    """``word`` as one shell word that bash and zsh both read back unchanged.

    :func:`shlex.quote` (POSIX quoting), and a word that starts with ``=`` single-quoted as well:
    zsh replaces ``=name`` by the path of command ``name`` (its ``EQUALS`` option, on by default).
    """
    quoted = shlex.quote(word)
    return f"'{word}'" if quoted == word and word.startswith("=") else quoted


def _option(name: str, value: str) -> list[str]:
    """``--name value``, or ``--name=value`` when the value starts with ``-`` (the CLI's argument
    parser would otherwise take it for an option: "expected one argument")."""
    return [f"{name}={value}"] if value.startswith("-") else [name, value]


def _command(*words: str) -> str:
    return " ".join(shell_word(word) for word in words)


def _tags_json(step: Step) -> str:
    """Tags in the CLI's JSON form: unlike the ``Key=…,Value=…`` shorthand it survives commas."""
    return json.dumps([{"Key": t.key, "Value": t.value} for t in step.tags], ensure_ascii=False, separators=(",", ":"))


def policy_file(name: str) -> str:
    """The file the preview writes a bot-managed policy's document to (in the current directory)."""
    return f"{name}.json"


def _ensure_bot_policy(step: Step) -> list[str]:
    """Two lines: write the document (``iam-user-bot policy``), then create the policy unless it
    exists (``get-policy`` answers; it says nothing either way)."""
    name = step.target or ""
    create = ["aws", "iam", "create-policy", *_option("--policy-name", name), "--path", "/"]
    if description := BOT_POLICY_DESCRIPTIONS.get(name):
        create += _option("--description", description)
    if step.tags:
        create += ["--tags", _tags_json(step)]
    create += ["--policy-document", f"file://{policy_file(name)}"]
    short = BOT_POLICY_SHORT_NAMES.get(name, name)
    write = _command("iam-user-bot", "policy", short) + " > " + shell_word(policy_file(name))
    if not step.policy_arn:
        return [write, _command(*create)]
    exists = _command("aws", "iam", "get-policy", "--policy-arn", step.policy_arn) + " > /dev/null 2>&1"
    return [write, f"{exists} || {_command(*create)}"]


def _create_user(step: Step) -> list[str]:
    words = ["aws", "iam", "create-user", *_option("--user-name", step.user_name), "--path", USER_PATH]
    if step.permissions_boundary_arn:
        words += ["--permissions-boundary", step.permissions_boundary_arn]
    if step.tags:
        words += ["--tags", _tags_json(step)]
    return [_command(*words)]


def _create_login_profile(step: Step) -> list[str]:
    """``--password="$PASSWORD"``, joined: a generated password may start with ``-``."""
    reset = "--password-reset-required" if step.password_reset_required else "--no-password-reset-required"
    command = _command("aws", "iam", "create-login-profile", *_option("--user-name", step.user_name))
    return [f'{command} --password="${PASSWORD_VARIABLE}" {reset}']


def _create_access_key(step: Step) -> list[str]:
    return [_command("aws", "iam", "create-access-key", *_option("--user-name", step.user_name))]


def _add_user_to_group(step: Step) -> list[str]:
    user, group = _option("--user-name", step.user_name), _option("--group-name", step.target or "")
    return [_command("aws", "iam", "add-user-to-group", *user, *group)]


def _attach_user_policy(step: Step) -> list[str]:
    user = _option("--user-name", step.user_name)
    return [_command("aws", "iam", "attach-user-policy", *user, "--policy-arn", step.target or "")]


def _put_user_policy(step: Step) -> list[str]:
    """Reads the inline document from the source user with a nested ``get-user-policy``, which
    is what the bot copies."""
    name, source = step.target or "", step.source_user or ""
    read = _command(
        "aws", "iam", "get-user-policy", *_option("--user-name", source), *_option("--policy-name", name),
        "--query", "PolicyDocument", "--output", "json",
    )  # fmt: skip
    put = _command(
        "aws", "iam", "put-user-policy", *_option("--user-name", step.user_name), *_option("--policy-name", name)
    )
    return [put + f' --policy-document "$({read})"']


def _removal(subcommand: str, target_option: str | None = None, *extra: str) -> Callable[[Step], list[str]]:
    """``aws iam <subcommand> --user-name U [<target_option> <target>] [extra…]`` for a removal step."""

    def line(step: Step) -> list[str]:
        words = ["aws", "iam", subcommand, *_option("--user-name", step.user_name)]
        if target_option:
            words += _option(target_option, step.target or "")
        return [_command(*words, *extra)]

    return line


def _delete_virtual_mfa_device(step: Step) -> list[str]:
    return [_command("aws", "iam", "delete-virtual-mfa-device", *_option("--serial-number", step.target or ""))]


# The CLI preview's table: the ``aws iam …`` lines of each step kind (a test checks none is missing).
CLI_COMMANDS: Mapping[StepKind, Callable[[Step], list[str]]] = {
    StepKind.ENSURE_BOT_POLICY: _ensure_bot_policy,
    StepKind.CREATE_USER: _create_user,
    StepKind.CREATE_LOGIN_PROFILE: _create_login_profile,
    StepKind.CREATE_ACCESS_KEY: _create_access_key,
    StepKind.ADD_USER_TO_GROUP: _add_user_to_group,
    StepKind.ATTACH_USER_POLICY: _attach_user_policy,
    StepKind.PUT_USER_POLICY: _put_user_policy,
    StepKind.DEACTIVATE_ACCESS_KEY: _removal("update-access-key", "--access-key-id", "--status", "Inactive"),
    StepKind.DELETE_LOGIN_PROFILE: _removal("delete-login-profile"),
    StepKind.DELETE_ACCESS_KEY: _removal("delete-access-key", "--access-key-id"),
    StepKind.DELETE_SIGNING_CERTIFICATE: _removal("delete-signing-certificate", "--certificate-id"),
    StepKind.DELETE_SSH_PUBLIC_KEY: _removal("delete-ssh-public-key", "--ssh-public-key-id"),
    StepKind.DELETE_SERVICE_SPECIFIC_CREDENTIAL: _removal(
        "delete-service-specific-credential", "--service-specific-credential-id"
    ),
    StepKind.DEACTIVATE_MFA_DEVICE: _removal("deactivate-mfa-device", "--serial-number"),
    StepKind.DELETE_VIRTUAL_MFA_DEVICE: _delete_virtual_mfa_device,
    StepKind.DELETE_USER_POLICY: _removal("delete-user-policy", "--policy-name"),
    StepKind.DETACH_USER_POLICY: _removal("detach-user-policy", "--policy-arn"),
    StepKind.REMOVE_USER_FROM_GROUP: _removal("remove-user-from-group", "--group-name"),
    StepKind.DELETE_USER: _removal("delete-user"),
}

# The review's table: under which heading of "Each user gets" a step kind's target is listed,
# or None where the review shows the kind elsewhere (the users list and their access, the
# boundary and tags of create_user, the "Also" line of the bot-managed policies; the removal
# steps, which the wizard's review never shows).
REVIEW_HEADINGS: Mapping[StepKind, str | None] = {
    StepKind.ENSURE_BOT_POLICY: None,
    StepKind.CREATE_USER: None,
    StepKind.CREATE_LOGIN_PROFILE: None,
    StepKind.CREATE_ACCESS_KEY: None,
    StepKind.ADD_USER_TO_GROUP: "Groups",
    StepKind.ATTACH_USER_POLICY: "Managed policies",
    StepKind.PUT_USER_POLICY: "Inline policies",
    **{kind: None for kind in StepKind if STEP_KINDS[kind].removes},
}


def step_command(step: Step) -> str:
    """The shell line(s) of ``step`` (:data:`CLI_COMMANDS`), one per line."""
    return "\n".join(CLI_COMMANDS[step.kind](step))


def cli_lines(steps: Iterable[Step]) -> list[str]:
    """The commands, one shell line each, in the plan's order (which is the order IAM needs)."""
    return [line for step in steps for line in CLI_COMMANDS[step.kind](step)]


def cli_script(steps: Sequence[Step]) -> str:
    """The commands as one text: :func:`cli_lines` joined by newlines, nothing else in it."""
    return "\n".join(cli_lines(steps))


def script_notes(steps: Sequence[Step]) -> list[str]:
    """What a reader must know to run the script, shown next to it (never inside: no comments).

    Slack mrkdwn sentences: where ``$PASSWORD`` comes from when a login profile is made, and what
    ``iam-user-bot policy`` is when a bot-managed policy may be created.
    """
    notes = ["Runs as shown in bash or zsh with the AWS CLI."]
    if any(step.kind is StepKind.CREATE_LOGIN_PROFILE for step in steps):
        notes.append(
            f"Set `{PASSWORD_VARIABLE}` first: the bot generates the password when the plan runs (or uses the "
            "requester's custom one); it is never shown here."
        )
    if any(step.kind is StepKind.ENSURE_BOT_POLICY for step in steps):
        notes.append(
            "`iam-user-bot policy …` (this bot's command line) writes a bot-managed policy's document; the policy "
            "is created only if the account has none yet, with the bot's description and tags."
        )
    return notes


@dataclass(frozen=True)
class Script:
    """A plan as the reader gets it: the shell ``lines`` and the ``notes`` that go beside them."""

    lines: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def preview(steps: Sequence[Step]) -> Script:
    """:func:`cli_lines` and :func:`script_notes` of ``steps``."""
    return Script(lines=tuple(cli_lines(steps)), notes=tuple(script_notes(steps)))
