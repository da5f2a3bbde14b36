"""IAM read at the moment a decision is made, in calls whose number does not grow with the account.

The catalog (:mod:`bot.aws.catalog`) is for typeahead; whatever decides reads IAM now: is a user
name taken, does a source user, group, managed policy or boundary exist, what is the account
password policy. Each question is a ``GetUser``, ``GetGroup`` (one member at most), ``GetPolicy``
or ``GetAccountPasswordPolicy``: a few calls per name asked, never a ``List…`` scan. The calls of
one question run at once (:class:`LiveIam` keeps a small pool), so a view submission waits for
about one IAM round trip, not one per name.

User names and case. IAM documents that user names are unique ignoring case ("Names are not
distinguished by case": CreateUser, and the IAM quotas page); ``CreateUser`` of ``gina`` fails
with ``EntityAlreadyExists`` while ``Gina`` exists. Whether ``GetUser`` also finds ``Gina`` when
asked for ``gina`` is not stated in the API reference, and moto answers only the exact spelling.
So a name is looked up in several spellings at once (as typed, lower case, title case, and the
spelling the catalog last saw, if any), and a hit in any of them means taken. If
``GetUser`` ignores case, the first spelling answers; if it does not, a user spelled some other
way and created after the catalog's last refresh is missed here, and ``CreateUser`` itself is
then refused by IAM before anything else of the request is made (the request fails cleanly).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from bot.aws.catalog import ManagedPolicy
from bot.aws.clients import as_iam_error, error_code
from bot.aws.iam import IamGateway
from bot.domain.models import UserPermissions
from bot.domain.plan import REQUEST_ID_TAG
from bot.domain.rules import PasswordPolicy

LOOKUP_THREADS = 16  # calls in flight for one process; IAM throttles an account as a whole


def spellings(name: str, known: str | None = None) -> list[str]:
    """The spellings of ``name`` to ask IAM for, distinct, as typed first: all lower case
    (``nina.ops``), title case (``Nina.Ops``), and ``known`` (the catalog's spelling of the same
    name, whatever it is). At most four ``GetUser`` a name, usually two or three."""
    found = [name, name.lower(), name.title()]
    if known is not None and known.lower() == name.lower():
        found.append(known)
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Wanted:
    """What to confirm in IAM, all at once.

    ``user_names``: requested names, to find taken ones; ``known``: a spelling per name (lower
    case key) worth asking as well; ``source_user``: a user that must exist; ``groups``,
    ``policy_arns``: that must exist; ``password_policy``: read the account password policy.
    """

    user_names: tuple[str, ...] = ()
    known: dict[str, str] = field(default_factory=dict)
    source_user: str | None = None
    groups: tuple[str, ...] = ()
    policy_arns: tuple[str, ...] = ()
    password_policy: bool = False


@dataclass(frozen=True)
class Found:
    """IAM's answers to a :class:`Wanted`.

    ``taken``: each requested name that exists, to the name as IAM spells it; ``source_user``:
    the source user as IAM spells it, or None when it does not exist; ``missing_groups``: groups
    IAM does not have; ``policies``: each policy ARN that exists, to the policy;
    ``password_policy``: the account password policy (AWS's default when none is set), when asked.
    """

    taken: dict[str, str] = field(default_factory=dict)
    source_user: str | None = None
    missing_groups: tuple[str, ...] = ()
    policies: dict[str, ManagedPolicy] = field(default_factory=dict)
    password_policy: PasswordPolicy | None = None


class LiveIam:
    """Confirms facts in IAM at once (:meth:`confirm`), through ``gateway``'s client.

    Args:
        gateway: the IAM gateway (client and its retries).
        threads: calls in flight at once for this process.
    """

    def __init__(self, gateway: IamGateway, threads: int = LOOKUP_THREADS) -> None:
        self.gateway = gateway
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="iam-live")

    def _all(self, calls: Sequence[Callable[[], Any]]) -> list[Any]:
        """Run ``calls`` at once; their results in order (the first error is raised)."""
        if len(calls) == 1:
            return [calls[0]()]
        return [future.result() for future in [self._pool.submit(call) for call in calls]]

    # -- one call each --------------------------------------------------------------------------

    def user(self, name: str) -> str | None:
        """``GetUser``: the user's name as IAM spells it, or None (``NoSuchEntity``)."""
        try:
            return str(self.gateway.iam.get_user(UserName=name)["User"]["UserName"])
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                return None
            raise as_iam_error(error) from None

    def group_exists(self, name: str) -> bool:
        """``GetGroup`` with one member at most (its answer pages the group's users)."""
        try:
            self.gateway.iam.get_group(GroupName=name, MaxItems=1)
        except ClientError as error:
            if error_code(error) == "NoSuchEntity":
                return False
            raise as_iam_error(error) from None
        return True

    def policy(self, arn: str) -> ManagedPolicy | None:
        """``GetPolicy``: the managed policy (AWS or customer managed), or None."""
        try:
            return ManagedPolicy.from_api(self.gateway.iam.get_policy(PolicyArn=arn)["Policy"])
        except ClientError as error:
            if error_code(error) in ("NoSuchEntity", "InvalidInput"):
                return None
            raise as_iam_error(error) from None

    # -- questions ------------------------------------------------------------------------------

    def confirm(self, wanted: Wanted) -> Found:
        """Every answer ``wanted`` asks for, from IAM now, all calls at once.

        Raises:
            IamError: a call was refused (not ``NoSuchEntity``, which is an answer).
        """
        calls: list[Callable[[], Any]] = []
        asked: list[tuple[str, str]] = []  # (kind, key) of each call
        for name in wanted.user_names:
            for spelling in spellings(name, wanted.known.get(name.lower())):
                calls.append(lambda s=spelling: self.user(s))
                asked.append(("user", name))
        if wanted.source_user:
            for spelling in spellings(wanted.source_user, wanted.known.get(wanted.source_user.lower())):
                calls.append(lambda s=spelling: self.user(s))
                asked.append(("source", wanted.source_user))
        for group in dict.fromkeys(wanted.groups):
            calls.append(lambda g=group: self.group_exists(g))
            asked.append(("group", group))
        for arn in dict.fromkeys(wanted.policy_arns):
            calls.append(lambda a=arn: self.policy(a))
            asked.append(("policy", arn))
        if wanted.password_policy:
            calls.append(self.gateway.password_policy)
            asked.append(("password_policy", ""))
        taken: dict[str, str] = {}
        source: str | None = None
        missing: list[str] = []
        policies: dict[str, ManagedPolicy] = {}
        password_policy = None
        for (kind, key), answer in zip(asked, self._all(calls), strict=True):
            if kind == "user" and answer is not None:
                taken.setdefault(key, answer)
            elif kind == "source" and answer is not None:
                source = source or answer
            elif kind == "group" and not answer:
                missing.append(key)
            elif kind == "policy" and answer is not None:
                policies[key] = answer
            elif kind == "password_policy":
                password_policy = answer
        return Found(taken, source, tuple(missing), policies, password_policy)

    def user_permissions(self, user_name: str) -> UserPermissions:
        """What a "copy from user" source holds: its groups, attached managed policies, inline
        policy names and boundary (``GetUser`` and three lists of the one user, all at once).

        Raises:
            IamError: ``NoSuchEntity`` when the user does not exist, or a refused read.
        """

        def read(call: Callable[[], Any]) -> Callable[[], Any]:
            def guarded() -> Any:
                try:
                    return call()
                except ClientError as error:
                    raise as_iam_error(error) from None

            return guarded

        gateway = self.gateway
        user, groups, attached, inline = self._all(
            [
                read(lambda: gateway.iam.get_user(UserName=user_name)["User"]),
                read(lambda: gateway.list("list_groups_for_user", "Groups", UserName=user_name)),
                read(lambda: gateway.list("list_attached_user_policies", "AttachedPolicies", UserName=user_name)),
                read(lambda: gateway.list("list_user_policies", "PolicyNames", UserName=user_name)),
            ]
        )
        return UserPermissions(
            user_name=user["UserName"],
            groups=tuple(g["GroupName"] for g in groups),
            managed_policy_arns=tuple(p["PolicyArn"] for p in attached),
            inline_policy_names=tuple(inline),
            permissions_boundary_arn=(user.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
        )

    def users_in_the_way(self, user_names: Iterable[str], request_id: str) -> list[str]:
        """Existing IAM users whose names equal one of ``user_names`` ignoring case (IAM user
        names are unique ignoring case) and that this request did not create (its id tag).

        A few ``GetUser`` per name (:func:`spellings`) and one ``ListUserTags`` per user found:
        nothing here grows with the number of users in the account.

        Raises:
            IamError: a read was refused.
        """
        found = self.confirm(Wanted(user_names=tuple(user_names))).taken
        existing = list(dict.fromkeys(found.values()))
        tags = self._all([lambda n=name: self.gateway.tags_of(n) for name in existing]) if existing else []
        # None: the user went away meanwhile, so it is in nobody's way.
        ours = [held is None or held.get(REQUEST_ID_TAG) == request_id for held in tags]
        return [name for name, mine in zip(existing, ours, strict=True) if not mine]

    def shutdown(self) -> None:
        """Stop the pool's threads (they are idle between questions)."""
        self._pool.shutdown(wait=False)
