"""Documents: archived files, every version of their bytes and extracted text, bulk import."""

from __future__ import annotations

from atmpvault.archive.core.domain import Domain

DOMAIN = Domain(
    name="documents",
    record_kinds="atmpvault.archive.documents.records:KINDS",
    tables="atmpvault.archive.documents.tables",
    index="atmpvault.archive.documents.indexing:index",
    verify="atmpvault.archive.documents.checks:verify",
    signable="atmpvault.archive.documents.versions:signable",
    commands="atmpvault.cli.documents:register",
)
