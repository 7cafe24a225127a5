"""Regulatory: applications (IND, BLA), FDA events and their milestone calendar, alerts,
and eCTD-style submission packages."""

from __future__ import annotations

from atmpvault.archive.core.domain import Domain
from atmpvault.archive.regulatory.alerts import RUN_KIND
from atmpvault.archive.regulatory.kinds import APP_KIND, EVENT_KIND, PACKAGE_KIND

DOMAIN = Domain(
    name="regulatory",
    record_kinds=(APP_KIND, EVENT_KIND, PACKAGE_KIND, RUN_KIND),
    document_types=(
        "ind",
        "bla",
        "rmat",
        "supplement",
        "annual-report",
        "correspondence",
        "meeting",
    ),  # fmt: skip
    tables="atmpvault.archive.regulatory.tables",
    index="atmpvault.archive.regulatory.indexing:index",
    index_tags="atmpvault.archive.regulatory.indexing:tags",
    tag_fields=("app", "sequence"),
    verify="atmpvault.archive.regulatory.checks:verify",
    list_users="atmpvault.archive.regulatory.alerts:list_users",
    commands="atmpvault.cli.regulatory:register",
    depends_on=("documents",),
)
