"""The regulatory workflow's part of `verify`: every finalised sequence keeps its tag,
and the tag points at the commit that finalised it; the projected milestones are what
the records derive; and every record whose milestones cannot be derived is named."""

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
        return self._tags() + self._milestones() + self._underivable()

    def _underivable(self) -> list[str]:
        """Records the calendar leaves out, as the projection recorded them."""
        from atmpvault.archive.regulatory.tables import underivable_rows

        with self.vault.catalog.connect() as conn:
            rows = underivable_rows(conn)
        return [f"{r.record} ({r.app}): milestones cannot be derived: {r.problem}" for r in rows]

    def _milestones(self) -> list[str]:
        """The projected milestones are what the records and rules derive now."""
        from atmpvault.archive.regulatory.tables import (
            closures,
            derive_all,
            milestone_row,
            milestones,
            rows_of,
            series,
            stored_rules,
            underivable,
        )
        from atmpvault.errors import InvalidRules

        with self.vault.catalog.connect() as conn:
            try:
                rules = stored_rules(conn)
            except InvalidRules:
                return []  # nothing derives from unusable rules; the calendar says why
            fixed, yearly, problems, closed = derive_all(conn, rules)
            derived = (
                (milestones, list(map(milestone_row, fixed))),
                (series, yearly),
                (underivable, problems),
                (closures, closed),
            )
            want = {
                (table.name, tuple(sorted(row.items()))) for table, rows in derived for row in rows
            }
            have = {
                (table.name, tuple(sorted(row.items())))
                for table, _rows in derived
                for row in rows_of(conn, table)
            }
        return [
            f"catalog {name} row {_key(dict(row))} is {what}"
            for what, rows in (("not what the records derive", have - want),
                               ("missing", want - have))
            for name, row in sorted(rows)
        ]  # fmt: skip

    def _tags(self) -> list[str]:
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


def _key(row: dict[str, object]) -> str:
    named = ("app", "rule", "event", "record") if "rule" in row else ("app", "key", "record")
    return " ".join(str(row[k]) for k in named if k in row)


def verify(vault: Vault) -> RegulatoryChecks:
    """The regulatory checker for one `verify` run."""
    return RegulatoryChecks(vault)
