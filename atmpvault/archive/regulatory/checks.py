"""The regulatory workflow's part of `verify`: every finalised sequence keeps its tag,
and the tag points at the commit that finalised it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from atmpvault.archive.regulatory.kinds import PACKAGE_KIND

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import CommitChanges
    from atmpvault.archive.core.vault import Vault

FINALISED = ("submitted", "acknowledged")


class RegulatoryChecks:
    """Fed every commit of history; then names every sequence whose tag is wrong."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.finalised: dict[str, tuple[str, str]] = {}  # package -> (tag, finalising commit)

    def feed(self, commit: CommitChanges) -> None:
        for change in commit.records:
            body = change.body
            if change.kind.name == PACKAGE_KIND.name and body.get("status") in FINALISED:
                self.finalised.setdefault(change.id, (str(body.get("tag")), commit.sha))

    def finish(self) -> list[str]:
        tags = self.vault.store.tags("seq/")
        problems = []
        for name, (tag, sha) in sorted(self.finalised.items()):
            found = tags.get(tag)
            if found is None:
                problems.append(
                    f"sequence {name} is finalised but its tag {tag} is missing; "
                    f"run 'package finalise {name.replace('/', ' ')}' to restore it"
                )
            elif found != sha:
                problems.append(
                    f"tag {tag} points at {found[:12]}, not at {sha[:12]} that finalised {name}"
                )
        return problems


def verify(vault: Vault) -> RegulatoryChecks:
    """The regulatory checker for one `verify` run."""
    return RegulatoryChecks(vault)
