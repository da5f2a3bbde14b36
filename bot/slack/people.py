"""Who may approve and who may request: the configured user ids plus the members of the configured
Slack user groups, resolved when asked (user groups through the messenger's short cache).

A failing user group lookup never widens who may act (:meth:`bot.slack.messenger.Messenger.usergroup_members`).
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.slack.messenger import Messenger


class People:
    """``APPROVER_*`` and ``REQUESTER_*`` made into sets of Slack user ids.

    Args:
        approver_ids / approver_group: ``APPROVER_USER_IDS`` and ``APPROVER_USERGROUP_ID``.
        requester_ids / requester_group: ``REQUESTER_USER_IDS`` and ``REQUESTER_USERGROUP_ID``;
            both unset means everyone may request.
    """

    def __init__(
        self,
        messenger: Messenger,
        approver_ids: Sequence[str] = (),
        approver_group: str | None = None,
        requester_ids: Sequence[str] = (),
        requester_group: str | None = None,
    ) -> None:
        self.messenger = messenger
        self.approver_ids = tuple(approver_ids)
        self.approver_group = approver_group
        self.requester_ids = tuple(requester_ids)
        self.requester_group = requester_group

    def approvers(self) -> frozenset[str]:
        """``APPROVER_USER_IDS`` ∪ members of ``APPROVER_USERGROUP_ID``, resolved now."""
        members = set(self.approver_ids)
        if self.approver_group:
            members |= self.messenger.usergroup_members(self.approver_group)
        return frozenset(members)

    def requesters(self) -> frozenset[str] | None:
        """Who may file, or None for everyone (both ``REQUESTER_*`` unset)."""
        if not self.requester_ids and not self.requester_group:
            return None
        members = set(self.requester_ids)
        if self.requester_group:
            members |= self.messenger.usergroup_members(self.requester_group)
        return frozenset(members)

    def approver_mentions(self) -> list[str]:
        """How to call the approvers in a message: each id, and the user group as ``<!subteam^…>``."""
        who = [f"<@{user_id}>" for user_id in self.approver_ids]
        if self.approver_group:
            who.append(f"<!subteam^{self.approver_group}>")
        return who
