"""Who is acting: a member through the bot, the CLI operator or the service itself.

Business functions take an Actor and check permissions themselves, so that a
forged callback or a thin handler that forgot a check changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from infranet.errors import PermissionDenied
from infranet.storage.models import Member


@dataclass(frozen=True)
class Actor:
    kind: str  # "member" | "cli" | "system" | "web"
    member: Member | None = None

    @classmethod
    def of(cls, member: Member) -> Actor:
        return cls("member", member)

    @classmethod
    def cli(cls) -> Actor:
        return cls("cli")

    @classmethod
    def system(cls) -> Actor:
        return cls("system")

    @property
    def name(self) -> str:
        if self.member is not None:
            return f"tg:{self.member.telegram_id}"
        return self.kind

    @property
    def is_admin(self) -> bool:
        """The CLI operator and the service itself act with admin rights."""
        if self.kind in ("cli", "system"):
            return True
        return self.member is not None and self.member.is_admin

    @property
    def organisation_id(self) -> int | None:
        return self.member.organisation_id if self.member else None

    def require_approved(self) -> Member:
        if self.member is None or not self.member.is_approved:
            raise PermissionDenied("error.need_member")
        return self.member

    def require_admin(self) -> None:
        if not self.is_admin:
            raise PermissionDenied("error.need_admin")

    def require_org(self, organisation_id: int | None) -> None:
        """Admins may act for any organisation; members only for their own."""
        if self.is_admin:
            return
        member = self.require_approved()
        if organisation_id is None or member.organisation_id != organisation_id:
            raise PermissionDenied("error.need_org")
