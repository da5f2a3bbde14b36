"""Taking existing IAM users away (``/iam-user remove``, contract section 5): the plan of IAM calls
for ``disable`` or ``delete``. Pure: no I/O; the caller reads each user's holdings from IAM.

``disable`` turns every credential off and keeps the user: each active access key
``UpdateAccessKey --status Inactive``, then ``DeleteLoginProfile`` (a password cannot be switched
off; deleting the profile is how console access ends, and a new profile or key restores access).

``delete`` follows the order of the IAM user guide ("Deleting an IAM user"): login profile,
access keys, signing certificates, SSH public keys, service-specific credentials, MFA devices
(deactivated; a virtual one then deleted), inline policies, attached managed policies, group
memberships, then ``DeleteUser``. Anything left makes ``DeleteUser`` fail with ``DeleteConflict``;
a permissions boundary does not (it goes with the user), so the bot never removes one.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain.models import RemoveMode, UserHoldings
from bot.domain.plan import Step, StepKind

MODE_WORDS = {
    RemoveMode.DISABLE: "disable: access keys made inactive and the console password deleted; the users are kept",
    RemoveMode.DELETE: "delete: everything on the users removed in IAM's order, then the users themselves",
}


def is_virtual_mfa(serial_number: str) -> bool:
    """A virtual MFA device's serial number is its ARN (``arn:aws:iam::…:mfa/…``); a hardware
    device's is the number printed on it, and only the account root can delete those."""
    return serial_number.startswith("arn:")


def disable_steps(holdings: UserHoldings) -> list[Step]:
    """Every active access key deactivated, then the login profile deleted (if there is one)."""
    name = holdings.user_name
    steps = [
        Step(kind=StepKind.DEACTIVATE_ACCESS_KEY, user_name=name, target=key)
        for key, status in holdings.access_keys
        if status == "Active"
    ]
    if holdings.login_profile:
        steps.append(Step(kind=StepKind.DELETE_LOGIN_PROFILE, user_name=name))
    return steps


def delete_steps(holdings: UserHoldings) -> list[Step]:
    """What ``DeleteUser`` needs gone first, in IAM's order, then ``DeleteUser``."""
    name = holdings.user_name

    def each(kind: StepKind, targets: Sequence[str]) -> list[Step]:
        return [Step(kind=kind, user_name=name, target=target) for target in targets]

    steps = [Step(kind=StepKind.DELETE_LOGIN_PROFILE, user_name=name)] if holdings.login_profile else []
    steps += each(StepKind.DELETE_ACCESS_KEY, [key for key, _ in holdings.access_keys])
    steps += each(StepKind.DELETE_SIGNING_CERTIFICATE, holdings.signing_certificates)
    steps += each(StepKind.DELETE_SSH_PUBLIC_KEY, holdings.ssh_public_keys)
    steps += each(StepKind.DELETE_SERVICE_SPECIFIC_CREDENTIAL, holdings.service_credentials)
    for serial in holdings.mfa_devices:
        steps.append(Step(kind=StepKind.DEACTIVATE_MFA_DEVICE, user_name=name, target=serial))
        if is_virtual_mfa(serial):
            steps.append(Step(kind=StepKind.DELETE_VIRTUAL_MFA_DEVICE, user_name=name, target=serial))
    steps += each(StepKind.DELETE_USER_POLICY, holdings.inline_policies)
    steps += each(StepKind.DETACH_USER_POLICY, [p.arn for p in holdings.managed_policies])
    steps += each(StepKind.REMOVE_USER_FROM_GROUP, holdings.groups)
    steps.append(Step(kind=StepKind.DELETE_USER, user_name=name))
    return steps


def removal_plan(holdings: Sequence[UserHoldings], mode: RemoveMode) -> list[Step]:
    """The IAM steps that ``disable`` or ``delete`` the users of ``holdings``, user after user."""
    build = disable_steps if mode is RemoveMode.DISABLE else delete_steps
    return [step for user in holdings for step in build(user)]


def what_is_left(holdings: UserHoldings | None, mode: RemoveMode) -> list[str]:
    """What a removal left of one user, in words (empty when it did all it should).

    ``holdings`` is the user as IAM holds it now (None: the user is gone). After ``delete``
    anything at all is left over; after ``disable`` only active credentials are.
    """
    if holdings is None:
        return []
    if mode is RemoveMode.DELETE:
        return ["the user itself", *holdings.left()]
    return [f"active credentials: {', '.join(found)}"] if (found := holdings.active_credentials()) else []
