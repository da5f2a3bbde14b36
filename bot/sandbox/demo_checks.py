"""Check from outside the bot what the demo's onboarding left behind: the IAM user, the link, leaks, the audit log.

Each check reads where a step landed (moto's IAM and STS, the one-time link's wire format, the files
the bot wrote, the ``audit`` command), shows what it found in the demo's
:class:`~bot.sandbox.demo_form.Transcript`, and stops the demo with
:class:`~bot.sandbox.demo_form.DemoFailed` when something is not as it should be.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from bot.domain.plan import USER_PATH
from bot.sandbox.demo_form import DemoFailed, Names, Transcript, blocks_as_text, mask, mrkdwn_to_text
from bot.sandbox.processes import http

LINK_RE = re.compile(r"https?://[^\s\"'<>|]+/credentials/[A-Za-z0-9_-]+#[A-Za-z0-9_-]+")


def check_iam_user(t: Transcript, iam: Any, user_name: str, group: str, request_id: str) -> list[str]:
    """Read ``user_name`` back from moto's IAM, show it and check it; return its access key ids."""
    t.say("IAM now holds (read back from moto):", indent=2)
    try:
        user = iam.get_user(UserName=user_name)["User"]
    except iam.exceptions.NoSuchEntityException:
        user = None
    t.check(user is not None, f"IAM user {user_name} exists")
    assert user is not None
    tags = {tag["Key"]: tag["Value"] for tag in user.get("Tags", [])}
    t.say(f"user       {user['Arn']}", indent=4)
    for key, value in sorted(tags.items()):
        t.say(f"tag        {key} = {value}", indent=4)
    groups = [g["GroupName"] for g in iam.list_groups_for_user(UserName=user_name)["Groups"]]
    t.say(f"groups     {', '.join(groups) or '-'}", indent=4)
    attached = [p["PolicyName"] for p in iam.list_attached_user_policies(UserName=user_name)["AttachedPolicies"]]
    inline = iam.list_user_policies(UserName=user_name)["PolicyNames"]
    t.say(f"policies   attached: {', '.join(attached) or '-'}; inline: {', '.join(inline) or '-'}", indent=4)
    profile = iam.get_login_profile(UserName=user_name)["LoginProfile"]
    t.say(f"login      console password set {profile['CreateDate']:%Y-%m-%d %H:%M:%S} UTC", indent=4)
    keys = iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]
    for key in keys:
        t.say(f"access key {key['AccessKeyId']} ({key['Status']})", indent=4)
    access_key_ids = [k["AccessKeyId"] for k in keys]
    t.check(request_id in tags.values(), "the user is tagged with the request id")
    t.check(groups == [group], f"the user is in group {group} and no other")
    t.check(len(keys) == 1 and keys[0]["Status"] == "Active", "the user has one active access key")
    return access_key_ids


def check_link_message(t: Transcript, args: dict[str, Any], names: Names, public_base_url: str) -> str:
    """Show the message carrying the one-time link with its key masked; check it holds one link, under
    ``public_base_url``, and return that link."""
    shown = blocks_as_text(args.get("blocks"), names) or args.get("text", "")
    links = sorted(set(LINK_RE.findall(json.dumps(args))))
    for found in links:
        shown = shown.replace(found, found.split("#", 1)[0] + "#" + mask(found.split("#", 1)[1]))
    t.say(shown, indent=6)
    t.check(len(links) == 1, "the message holds exactly one one-time link", f"found {len(links)}")
    link = links[0]
    page_url, key = link.split("#", 1)
    t.say(f"link: {page_url}#{mask(key)}  (the part after # is the decryption key)", indent=4)
    t.check(link.startswith(public_base_url + "/credentials/"), "the link starts with PUBLIC_BASE_URL")
    return link


def reveal_link(t: Transcript, link: str) -> dict[str, Any]:
    """Open the one-time ``link`` as a link preview, a stray POST and the recipient; return the decrypted credentials.

    Checks that only the deliberate reveal consumes the link and that the server sends only
    ciphertext, which decrypts with the key after ``#``.
    """
    from bot.credentials.vault import b64url_decode, open_sealed

    page_url, key = link.split("#", 1)
    secret_id = page_url.rsplit("/", 1)[1]
    preview = http(
        "GET", page_url, headers={"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}
    )
    t.say(f"GET {page_url} as Slack's link preview bot -> HTTP {preview.status}", indent=2)
    t.check(preview.status == 200 and b"Reveal" in preview.body, "the page loads and shows a Reveal button")
    other = http("GET", page_url.rsplit("/", 1)[0] + "/" + "x" * len(secret_id))
    t.check(other.body == preview.body, "the page is the same bytes for any id, so it tells nothing")
    t.check(preview.headers.get("cache-control") == "no-store", "the page is not cached (Cache-Control: no-store)")
    stray = http("POST", page_url)
    t.say(f"POST without X-Requested-With: reveal -> HTTP {stray.status}", indent=2)
    t.check(stray.status == 400, "a POST that is not a deliberate reveal is refused")

    revealed = http("POST", page_url, headers={"X-Requested-With": "reveal"})
    t.say(f"POST with X-Requested-With: reveal (Nina clicks Reveal) -> HTTP {revealed.status}", indent=2)
    t.check(revealed.status == 200, "the reveal answers 200, so the GET and the stray POST consumed nothing")
    sealed = revealed.json() or {}
    t.check(
        set(sealed) == {"iv", "ciphertext"},
        "the server sends only ciphertext (iv, ciphertext); it never had the key",
    )
    try:
        return json.loads(open_sealed(secret_id, key, b64url_decode(sealed["iv"]), b64url_decode(sealed["ciphertext"])))
    except Exception as error:  # InvalidTag, bad base64, bad JSON: all mean the reveal is broken
        raise DemoFailed(
            f"the revealed ciphertext does not decrypt with the link's key ({type(error).__name__})"
        ) from None


def check_credentials(
    t: Transcript, moto: Any, link: str, plain: dict[str, Any], user_name: str, access_key_ids: list[str]
) -> None:
    """Show the revealed credentials masked, sign in to STS with them, and check the link is now spent."""
    page_url = link.split("#", 1)[0]
    t.say("Decrypted in the 'browser' (here: bot.credentials.vault.open_sealed, the same AES-256-GCM):", indent=2)
    t.say(f"user name          {plain.get('user_name')}", indent=4)
    t.say(f"console sign-in    {plain.get('console_url')}", indent=4)
    t.say(f"password           {mask(plain.get('password'))}", indent=4)
    t.say(f"access key id      {plain.get('access_key_id')}", indent=4)
    t.say(f"secret access key  {mask(plain.get('secret_access_key'))}", indent=4)
    t.check(plain.get("user_name") == user_name, f"the credentials are for {user_name}")
    t.check(plain.get("access_key_id") in access_key_ids, "the access key id is the one IAM holds")
    t.check(bool(plain.get("password")), "a console password was delivered")
    sts = moto.boto3_client(
        "sts",
        aws_access_key_id=plain.get("access_key_id") or "",
        aws_secret_access_key=plain.get("secret_access_key") or "",
    )
    arn = sts.get_caller_identity()["Arn"]
    t.say(f"sts get-caller-identity with the revealed key -> {arn}", indent=2)
    t.check(arn.endswith(f":user{USER_PATH}{user_name}"), "the revealed access key signs in as the new user")
    again = http("POST", page_url, headers={"X-Requested-With": "reveal"})
    message = (again.json() or {}).get("message", "") if again.body else ""
    t.say(f"Reveal again -> HTTP {again.status} {message}", indent=2)
    t.check(again.status == 410, "a second reveal gets 410 Gone: the ciphertext was destroyed")


def check_reuse_alert(t: Transcript, slack: Any, approval_channel: str, recipient: str, names: Names) -> None:
    """After a second reveal: show and check the approvers' alert (with **Rotate credentials**) and the
    recipient's DM, as the stand-in received them."""

    def alert(call: Any) -> bool:
        return call.args.get("channel") == approval_channel and "reuse_alert" in json.dumps(call.args.get("blocks"))

    def warning(call: Any) -> bool:
        return call.args.get("channel") == f"D{recipient}" and "tried to open" in str(call.args.get("text"))

    try:
        posted = slack.wait_for("chat.postMessage", alert, timeout=10)[0]
        told = slack.wait_for("chat.postMessage", warning, timeout=10)[0]
    except AssertionError as missing:
        raise DemoFailed(f"the second reveal raised no alert: {missing}") from None
    t.say(f"The approvers' channel #{names.get(approval_channel, approval_channel)} gets an alert:", indent=2)
    t.say(blocks_as_text(posted.args.get("blocks"), names) or posted.args.get("text", ""), indent=4)
    t.check(posted.ok, "the approvers are alerted to a possible interception, with Rotate credentials")
    t.say(f"DM to @{names.get(recipient, recipient)}: {mrkdwn_to_text(told.args.get('text', ''), names)}", indent=4)
    t.check(told.ok, "the recipient is told that someone tried the link again")


def check_no_leaks(t: Transcript, secrets_found: Mapping[str, str], places: Mapping[str, str]) -> None:
    """Check that no value of ``secrets_found`` occurs in any of ``places`` (name -> text).

    Only the one-time link message may hold the link key.
    """
    for place, haystack in places.items():
        allowed = {"link key"} if place == "the one-time link message" else set()
        leaked = [name for name, value in secrets_found.items() if value and name not in allowed and value in haystack]
        t.check(not leaked, f"no password, secret access key or link key in {place}", ", ".join(leaked))


def check_audit_log(t: Transcript, database_path: str, request_id: str, people: Mapping[str, str]) -> None:
    """Export the audit log with ``iam-user-bot audit``, show ``request_id``'s events and check the main ones."""
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", "audit", "--format", "json"],
        env={**os.environ, "DATABASE_PATH": database_path},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    t.check(done.returncode == 0, "the audit command exported the log", done.stderr.strip()[:200])
    events = [e for e in json.loads(done.stdout) if e.get("request_id") in (request_id, None)]
    for event in events:
        actor = "@" + people.get(event.get("actor"), event.get("actor")) if event.get("actor") else "the bot"
        step = (event.get("detail") or {}).get("step", "") if isinstance(event.get("detail"), dict) else ""
        t.say(f"{event['at'][:19]}  {event['event']:<22} {actor}  {step}".rstrip(), indent=4)
    names = [e["event"] for e in events]
    wanted = ("filed", "approved", "provisioned", "link_revealed")
    t.check(all(w in names for w in wanted), f"the audit log records {', '.join(wanted)}")
