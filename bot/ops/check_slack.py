"""The Slack half of ``iam-user-bot check``: the bot token, its scopes, the people, Socket Mode,
worded as check lines (the read-only calls themselves are :mod:`bot.slack.selfcheck`'s).
"""

from __future__ import annotations

from typing import Any

from bot.ops.report import CheckLine, Inputs
from bot.slack.manifest import ManifestError
from bot.slack.selfcheck import UNREACHABLE, SlackProbe

MAX_PEOPLE_CHECKED = 50  # users.info calls at most; Slack's tier-4 limit is 100 a minute


def manifest_scopes() -> set[str]:
    """The bot scopes the app manifest asks for (``manifest.yml``)."""
    from bot.slack.manifest import load_template

    return set(load_template()["oauth_config"]["scopes"]["bot"])


def check_scopes(headers: dict[str, Any]) -> CheckLine:
    """The token's scopes (Slack's ``X-OAuth-Scopes`` answer header) against the manifest's."""
    granted_text = {str(k).lower(): v for k, v in (headers or {}).items()}.get("x-oauth-scopes")
    if granted_text is None:
        return CheckLine("slack scopes", True, "Slack did not name the token's scopes (no X-OAuth-Scopes); not checked")
    if isinstance(granted_text, list):
        granted_text = ",".join(granted_text)
    granted = {s.strip() for s in str(granted_text).split(",") if s.strip()}
    try:
        needed = manifest_scopes()
    except ManifestError as error:
        return CheckLine("slack scopes", False, str(error), "reinstall the bot from a wheel built with its setup.py")
    missing, extra = sorted(needed - granted), sorted(granted - needed)
    if missing:
        return CheckLine(
            "slack scopes",
            False,
            "the bot token lacks " + ", ".join(missing),
            "paste the output of `iam-user-bot manifest --url <PUBLIC_BASE_URL>` (or --socket-mode) into the app's "
            "App Manifest page, then reinstall the app to the workspace",
        )
    note = f"; also granted, not needed: {', '.join(extra)}" if extra else ""
    return CheckLine("slack scopes", True, f"all {len(needed)} scopes the bot uses are granted{note}")


def check_people(slack: SlackProbe, inputs: Inputs) -> CheckLine:
    """Approvers and requesters named by id exist in the workspace, their user groups too."""
    problems: list[str] = []
    fixes: list[str] = []
    named = list(dict.fromkeys((*inputs.approver_ids, *inputs.requester_ids)))
    for user_id in named[:MAX_PEOPLE_CHECKED]:
        user, problem = slack.user(user_id)
        if user is None:
            problems.append(f"{user_id}: users.info answered {problem}")
            continue
        if user.get("deleted") or user.get("is_bot"):
            problems.append(f"{user_id} is {'deactivated' if user.get('deleted') else 'a bot'}")
    if problems:
        fixes.append("use member IDs of active people (profile → ⋮ → Copy member ID)")
    groups = {"APPROVER_USERGROUP_ID": inputs.approver_group, "REQUESTER_USERGROUP_ID": inputs.requester_group}
    for variable, group in groups.items():
        if not group:
            continue
        members, problem = slack.usergroup_members(group)
        if members is None:
            problems.append(f"{variable} {group}: usergroups.users.list answered {problem}")
            fixes.append(f"set {variable} to the user group's ID (S…), from the group's page in Slack")
            continue
        if variable == "APPROVER_USERGROUP_ID" and not members and not inputs.approver_ids:
            problems.append(f"user group {group} has no members, so nobody can approve")
            fixes.append("add approvers to the group, or set APPROVER_USER_IDS")
    if problems:
        return CheckLine("slack people", False, "; ".join(problems), "; ".join(dict.fromkeys(fixes)))
    checked = f"{min(len(named), MAX_PEOPLE_CHECKED)} user id(s)" + (
        " and user group(s)" if any(groups.values()) else ""
    )
    return CheckLine("slack people", True, f"{checked} found in the workspace")


def check_app_token(slack: SlackProbe, app_token: str) -> CheckLine:
    """Socket Mode: the app-level token can open a connection (``apps.connections.open``; nothing connects)."""
    problem = slack.socket_mode(app_token)
    if problem is None:
        return CheckLine("slack socket mode", True, "the app-level token opens Socket Mode connections")
    if problem.startswith(UNREACHABLE):
        return CheckLine("slack socket mode", False, f"cannot reach Slack: {problem}", "check outbound HTTPS")
    return CheckLine(
        "slack socket mode",
        False,
        f"apps.connections.open answered {problem}",
        "check SLACK_APP_TOKEN (an xapp- token with connections:write) and that Socket Mode is on for the app",
    )


def check_slack(inputs: Inputs) -> list[CheckLine]:
    """auth.test with the bot token, then (when it works) scopes, people and the app-level token."""
    base_url = inputs.slack_base_url
    slack = SlackProbe(str(inputs.bot_token), base_url)
    answer, headers, problem = slack.auth()
    if answer is None:
        if problem and problem.startswith(UNREACHABLE):
            return [
                CheckLine("slack", False, f"cannot reach {base_url}: {problem}", "check SLACK_API_URL and the network")
            ]
        fix = "check SLACK_BOT_TOKEN (reinstall the app for a new token)"
        return [CheckLine("slack", False, f"auth.test answered {problem}", fix)]
    lines = [CheckLine("slack", True, f"bot user {answer.get('user')} in workspace {answer.get('team')}")]
    lines.append(check_scopes(headers))
    if inputs.approver_ids or inputs.requester_ids or inputs.approver_group or inputs.requester_group:
        lines.append(check_people(slack, inputs))
    if inputs.app_token:
        lines.append(check_app_token(slack, inputs.app_token))
    return lines
