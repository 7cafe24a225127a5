"""Regulatory: applications (IND, BLA), FDA events and their milestone calendar, alerts,
and eCTD-style submission packages."""

from __future__ import annotations

from atmpvault.archive.core.domain import Domain

DOMAIN = Domain(
    name="regulatory",
    record_kinds="atmpvault.archive.regulatory.kinds:KINDS",
    tables="atmpvault.archive.regulatory.tables",
    index="atmpvault.archive.regulatory.indexing:index",
    index_tags="atmpvault.archive.regulatory.indexing:tags",
    tag_fields=("app", "sequence"),
    verify="atmpvault.archive.regulatory.checks:verify",
    list_users="atmpvault.archive.regulatory.alerts:list_users",
    commands="atmpvault.cli.regulatory:register",
    depends_on=("documents",),
)
