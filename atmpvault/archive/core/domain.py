"""The Domain descriptor: what a workflow contributes to the core, declared, never imported.

Each workflow package exports one `DOMAIN`. The core is handed the tuple of them (see
archive/domains.py) and asks them; it never imports a workflow. Hooks are named by
dotted path ("package.module:function") and loaded on first use, so a command that
does not need a workflow's code never imports it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from atmpvault.archive.core.changes import CommitChanges
    from atmpvault.archive.core.records import RecordKind


class Domain(NamedTuple):
    """One workflow, as the core sees it (a named tuple: every command makes this class,
    and a tuple's costs a tenth of a frozen dataclass's).

    - `record_kinds`: "module:NAME" of the tuple of records it keeps (projected by the core
      unless not `generic`); named, not imported, so `--help` loads no record code.
    - `document_types`: types it adds to the vault's default vocabulary.
    - `tables`: module defining its catalog tables on core.catalog's metadata, with
      `project(conn, commits, ctx)`; `schema` is their version string, declared here so
      that opening a catalog imports no workflow's tables (a change rebuilds the catalog).
    - `index_entries`: "module:function"(ctx, commits) -> the index entries these commits
      change.
    - `index_tags`: "module:function"(ctx, keys) -> keyword tags per (document, version).
    - `tag_fields`: the tag field names it contributes, usable in queries (app:...).
    - `verify`: "module:function"(vault, replayed) -> problems, one line each.
    - `release_holds`: "module:function"(vault, lot) -> reasons a lot may not be released.
    - `held_lots`: "module:function"(vault) -> the lots it holds now (any release hold), so
      many lots' holds are asked only of the few that have some.
    - `on_release`: "module:function"(vault, unit, lot, disposition): what it writes, in the
      release's commit, when a lot is released (custody: the qa-release step).
    - `on_lot_status`: "module:function"(vault, unit, lot, status): what it writes, in
      the same commit, when a lot's status changes (dosing: confirmations).
    - `list_users`: "module:function"(vault, name) -> reasons a distribution list is still
      needed (alerts routed to it); the core refuses to remove a list while any remain.
    - `settings`: "module:function"(section) -> the effective settings (JSON) of its
      section of config/vault.json (named after the workflow), defaults filled in; it
      raises VaultError naming what is wrong with a broken section.
    - `signable`: "module:function"(vault, kind, id, version) -> the fields of a
      signatures.Target (kind, id, version, sha256, lots, current version) for a version
      of a kind it projects itself (documents), or None if there is no such version.
    - `commands`: "module:function"(cli) that adds its command groups.
    """

    name: str
    record_kinds: str | None = None  # "module:TUPLE" of its RecordKinds
    document_types: tuple[str, ...] = ()
    tables: str | None = None
    schema: str = ""
    index_entries: str | None = None
    index_tags: str | None = None
    tag_fields: tuple[str, ...] = ()
    verify: str | None = None
    release_holds: str | None = None
    held_lots: str | None = None
    on_release: str | None = None
    on_lot_status: str | None = None
    list_users: str | None = None
    settings: str | None = None
    signable: str | None = None
    commands: str | None = None
    # The top-level commands `commands` adds, with their one-line help: the CLI lists
    # them and imports the workflow's command module only when one is used.
    command_help: tuple[tuple[str, str], ...] = ()
    depends_on: tuple[str, ...] = ()


@cache
def load(ref: str) -> Any:
    """The object a dotted reference names: "package.module:attribute" or "package.module"."""
    module_name, _, attribute = ref.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def hooks(domains: Iterable[Domain], attribute: str) -> list[Callable[..., Any]]:
    """The loaded hook `attribute` of every domain that declares one, in domain order."""
    return [load(ref) for d in domains if (ref := getattr(d, attribute)) is not None]


def record_kinds(domains: Iterable[Domain]) -> tuple[RecordKind, ...]:
    """Every record kind, refusing two kinds of one name or root (a clash of workflows)."""
    kinds: dict[str, RecordKind] = {}
    roots: dict[str, str] = {}
    for domain in domains:
        declared: tuple[RecordKind, ...] = load(domain.record_kinds) if domain.record_kinds else ()
        for kind in declared:
            if kind.name in kinds or kind.root in roots:
                clash = kind.name if kind.name in kinds else roots[kind.root]
                raise ValueError(
                    f"workflow {domain.name} declares {kind.name}, clashing with {clash}"
                )
            kinds[kind.name] = kind
            roots[kind.root] = kind.name
    return tuple(kinds.values())


def check(domains: tuple[Domain, ...]) -> tuple[Domain, ...]:
    """The domains, in an order where each comes after the ones it depends on."""
    names = [d.name for d in domains]
    for domain in domains:
        if domain.tables is not None and not domain.schema:
            raise ValueError(f"workflow {domain.name} has tables but no schema version")
        for needed in domain.depends_on:
            if needed not in names[: names.index(domain.name)]:
                raise ValueError(f"workflow {domain.name} needs {needed} listed before it")
    return domains  # their record kinds are checked for clashes when a vault opens


Projector = Callable[[Any, "list[CommitChanges]", Any], None]
