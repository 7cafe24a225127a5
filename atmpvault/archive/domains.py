"""Every workflow of atmpvault, by the dotted path of its Domain descriptor.

The CLI loads these and hands them to the Vault; the core never imports a workflow.
Adding a workflow is one line here and a package beside the others.
"""

from __future__ import annotations

from functools import cache

from atmpvault.archive.core.domain import Domain, check, load

DOMAIN_PATHS = (
    "atmpvault.archive.documents:DOMAIN",
    "atmpvault.archive.regulatory:DOMAIN",
    "atmpvault.archive.lots:DOMAIN",
    "atmpvault.archive.quality:DOMAIN",
    "atmpvault.archive.custody:DOMAIN",
    "atmpvault.archive.dosing:DOMAIN",
)


@cache
def domains() -> tuple[Domain, ...]:
    """The descriptors, loaded, each after the workflows it depends on."""
    return check(tuple(load(path) for path in DOMAIN_PATHS))
