"""The date fields of a dosing schedule: a module of its own, so the command line can name
them (`dosing update --ld-start ...`) without loading the model."""

from __future__ import annotations

# The dates of a schedule, in the order they happen; `dosing update --FIELD` takes these
# names with hyphens, JSON with underscores.
FIELDS = (
    "apheresis", "manufacturing_start", "expected_completion", "expected_release", "ship",
    "delivery_from", "delivery_to", "ld_start", "ld_end", "infusion",
)  # fmt: skip
