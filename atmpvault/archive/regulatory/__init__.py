"""Regulatory: applications (IND, BLA), FDA events and their milestone calendar, alerts,
and eCTD-style submission packages."""

from __future__ import annotations

from atmpvault.archive.core.domain import Domain

DOMAIN = Domain(
    name="regulatory",
    record_kinds="atmpvault.archive.regulatory.kinds:KINDS",
    tables="atmpvault.archive.regulatory.tables",
    schema="5",
    index_entries="atmpvault.archive.regulatory.indexing:index",
    index_tags="atmpvault.archive.regulatory.indexing:tags",
    tag_fields=("app", "sequence"),
    verify="atmpvault.archive.regulatory.checks:verify",
    list_users="atmpvault.archive.regulatory.alerts:list_users",
    commands="atmpvault.cli.regulatory:register",
    command_help=(
        ("alerts", "Alert the distribution lists to milestones coming due and overdue."),
        ("app", "Applications (IND, BLA) that events and milestones belong to."),
        ("calendar", "Milestones in date order with days remaining (negative when overdue)."),
        ("event", "Dated regulatory events; each derives milestones by the FDA rules."),
        ("milestone", "Close milestones: done (with evidence), waived, or reopened."),
        (
            "package",
            "Submission packages: eCTD v3.2.2-style sequences built from archived documents.",
        ),
    ),
    depends_on=("documents",),
)
