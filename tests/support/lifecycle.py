"""Helpers for the lifecycle tests: a bot-made user seeded as provisioning leaves it (its request in
the store, the user in IAM with the bot's tags), a user loaded with everything ``DeleteUser``
refuses to delete past, and the removal form's values as Slack sends them."""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bot.domain.models import AccessType, PermissionExpansion, RequestForm
from bot.domain.plan import MANAGED_TAG, OWNER_TAG, REQUEST_ID_TAG, USER_PATH
from bot.domain.records import RotationRow
from bot.domain.risk import fingerprint
from bot.domain.seal import ApprovalSeal, RecordSeal
from bot.domain.states import RequestEvent, RotationState
from bot.lifecycle.removal_form import JUSTIFICATION_BLOCK, MODE_BLOCK, USERS_BLOCK
from bot.sandbox.moto_iam import AGE_PATH, SIGN_IN_PATH
from bot.sandbox.processes import http
from bot.storage.base import Store
from tests.conftest import APPROVER, REQUESTER

SSH_KEY = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDQnina.newhire nina@laptop"
READ_DOCUMENT = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}
)


def seed_user(
    store: Store,
    iam: Any,
    name: str,
    owner: str,
    *,
    console: bool = True,
    key: bool = True,
    seal: ApprovalSeal | None = None,
) -> str:
    """A bot-made user as provisioning leaves it: its provisioned request in ``store``, the user
    under /iam-user-bot/ with the bot's tags, a login profile and an access key. Its request id.
    With ``seal`` (the bot's), the request is approved as the bot approves one: a review stored
    and its sealed fingerprint recorded (else it is moved ``approved`` with no review)."""
    form = RequestForm(
        recipients=(owner,),
        user_names=(name,),
        access_types=frozenset({AccessType.CONSOLE, AccessType.PROGRAMMATIC}),
        justification="lifecycle tests",
    )
    request_id = store.create_request(REQUESTER, form).id
    moves = [RequestEvent.PROVISIONING_STARTED, RequestEvent.PROVISIONED]
    if seal is None:
        moves.insert(0, RequestEvent.APPROVED)
    else:
        expansion = PermissionExpansion()
        assert store.save_review(request_id, expansion, (), 1)
        approved = store.record_approval(request_id, APPROVER, seal.seal(request_id, fingerprint(form, expansion)))
        assert approved.request is not None, approved
    for event in moves:
        assert store.move_request(request_id, event, actor=APPROVER) is not None
    tags = {MANAGED_TAG: "true", OWNER_TAG: owner, REQUEST_ID_TAG: request_id}
    iam.create_user(UserName=name, Path=USER_PATH, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    if console:
        iam.create_login_profile(UserName=name, Password="Initial-Passw0rd!xyzXYZ")
    if key:
        iam.create_access_key(UserName=name)
    return request_id


def certificate(common_name: str) -> str:
    """A self-signed X.509 certificate in PEM (``UploadSigningCertificate`` checks it parses)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def load_user(iam: Any, name: str) -> None:
    """Give an existing user one of everything IAM makes you remove before ``DeleteUser`` (besides
    its login profile and active key): an inactive second key, a signing certificate, an SSH
    public key, a service-specific credential, an enabled virtual MFA device, an inline policy, a
    managed policy and a group."""
    old = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
    iam.update_access_key(UserName=name, AccessKeyId=old, Status="Inactive")
    iam.upload_signing_certificate(UserName=name, CertificateBody=certificate(name))
    iam.upload_ssh_public_key(UserName=name, SSHPublicKeyBody=SSH_KEY)
    iam.create_service_specific_credential(UserName=name, ServiceName="codecommit.amazonaws.com")
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{name}-mfa")["VirtualMFADevice"]
    codes = {"AuthenticationCode1": "123456", "AuthenticationCode2": "654321"}
    iam.enable_mfa_device(UserName=name, SerialNumber=device["SerialNumber"], **codes)
    iam.put_user_policy(UserName=name, PolicyName="scratch", PolicyDocument=READ_DOCUMENT)
    local = {p["PolicyName"]: p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]}
    arn = (
        local.get("team-read")
        or iam.create_policy(PolicyName="team-read", PolicyDocument=READ_DOCUMENT)["Policy"]["Arn"]
    )
    if "developers" not in {g["GroupName"] for g in iam.list_groups()["Groups"]}:
        iam.create_group(GroupName="developers")
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    iam.add_user_to_group(UserName=name, GroupName="developers")


def removal_values(names: list[str], mode: str, justification: str = "Nina left the company.") -> dict[str, Any]:
    """The removal form's ``state.values`` as Slack sends them."""
    chosen = [{"value": n, "text": {"type": "plain_text", "text": n}} for n in names]
    return {
        USERS_BLOCK: {USERS_BLOCK: {"type": "multi_external_select", "selected_options": chosen}},
        MODE_BLOCK: {MODE_BLOCK: {"type": "radio_buttons", "selected_option": {"value": mode}}},
        JUSTIFICATION_BLOCK: {JUSTIFICATION_BLOCK: {"type": "plain_text_input", "value": justification}},
    }


def age(moto_url: str, user_name: str, days: float) -> None:
    """Let ``days`` pass for a user in the tests' moto server: its creation, its keys' creation and
    last use, and its password's last use all move that far back (:mod:`bot.sandbox.moto_iam`)."""
    body = urllib.parse.urlencode({"user": user_name, "days": str(days)}).encode()
    assert http("POST", moto_url + AGE_PATH, body).status == 200


def console_sign_in(moto_url: str, user_name: str, at: datetime | None = None) -> None:
    """The user signs in to the console (now, or ``at``): moto reports it as ``PasswordLastUsed``."""
    fields = {"user": user_name, **({"at": at.isoformat()} if at else {})}
    assert http("POST", moto_url + SIGN_IN_PATH, urllib.parse.urlencode(fields).encode()).status == 200


def blocks_of(args: dict[str, Any]) -> list[dict[str, Any]]:
    """The blocks of a recorded Slack call (JSON text or a list, as the client sent them)."""
    raw = args.get("blocks") or []
    return json.loads(raw) if isinstance(raw, str) else raw


def buttons_of(args: dict[str, Any]) -> list[dict[str, Any]]:
    """Every button of a message or view: in actions blocks and as section accessories."""
    found = []
    for block in blocks_of(args):
        if block["type"] == "actions":
            found += block["elements"]
        if (block.get("accessory") or {}).get("type") == "button":
            found.append(block["accessory"])
    return found


def keys_of(iam: Any, user_name: str) -> dict[str, str]:
    """Access key id → status, as IAM holds them."""
    return {k["AccessKeyId"]: k["Status"] for k in iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]}


def start_sealed_rotation(
    store: Store, seal: RecordSeal, user_name: str, old_key_id: str, owner: str, request_id: str
) -> RotationRow | None:
    """``store.start_rotation`` as the bot's :meth:`bot.lifecycle.rotation.Rotations.rotate` makes
    it: started now, sealed with ``seal`` (the bot's), no other keys kept."""
    now = store.clock()
    record = RotationRow(user_name, RotationState.STARTED, old_key_id, owner, request_id, now, now)
    return store.start_rotation(
        user_name,
        old_key_id=old_key_id,
        owner=owner,
        request_id=request_id,
        kept_key_ids=[],
        actor=owner,
        started_at=now,
        seal=seal.rotation(record),
    )
