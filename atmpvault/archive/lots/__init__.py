"""Lots: the lot registry (program, chain-of-identity id, kind, status) that quality,
custody and dosing build on; release asks every workflow's release holds."""

from __future__ import annotations

from atmpvault.archive.core.domain import Domain

DOMAIN = Domain(
    name="lots",
    record_kinds="atmpvault.archive.lots.records:KINDS",
    commands="atmpvault.cli.lots:register",
    command_help=(
        ("bundle", "Auditor bundles written by 'atmpvault lot export'."),
        ("lot", "Lots: one per manufacturing run; an autologous lot belongs to one patient."),
    ),
    depends_on=("documents",),
)
