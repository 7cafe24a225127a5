"""Documents: archived files, every version of their bytes and extracted text, bulk import."""

from __future__ import annotations

from atmpvault.archive.core.domain import Domain

DOMAIN = Domain(
    name="documents",
    record_kinds="atmpvault.archive.documents.records:KINDS",
    tables="atmpvault.archive.documents.tables",
    schema="2",  # 2: source_path, duplicate_of
    index_entries="atmpvault.archive.documents.indexing:index",
    verify="atmpvault.archive.documents.checks:verify",
    signable="atmpvault.archive.documents.versions:signable",
    commands="atmpvault.cli.documents:register",
    command_help=(
        ("add", "Archive a document, or a new version of one."),
        ("show", "Show one version's record (the latest by default) and its signatures."),
        ("get", "Write the exact archived bytes of a version (an existing file only with --force)."),
        ("history",
         "Every version of a document, oldest first, with who, when, why and what changed."),
        ("ls",
         "List the latest version of each document, or the versions in --app/--sequence."),
        ("withdraw",
         "Withdraw a document: a new version with status withdrawn (nothing is deleted)."),
        ("import",
         "Import a folder (recursively), one file, or a CSV manifest, one document per file."),
    ),
)  # fmt: skip
