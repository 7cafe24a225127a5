"""A vault that works on a shared upstream: every write publishes, every copy converges.

The upstream (a bare repository any git URL names, see repository/remote.py) is the
shared system of record; the workstation's repository is its copy. A write, under the
local lock: fetch the upstream tip and bring the local branch to it (a fast-forward;
history the upstream no longer holds is refused loudly, nothing local discarded); the
workflow validates against that tip (next ids, duplicates, holds) and builds its commit,
which is written beside the branch (PENDING_REF) and pushed with a compare-and-swap on
the upstream branch. Only after the push does the local branch move. If another
workstation pushed first, the command runs again on the new tip (the CLI retries, with
jitter, a bounded number of times); an unreachable upstream refuses the write with
nothing written anywhere. Reads never need the upstream: `sync` brings the copy up to
date, and every command says when it is older than the vault's `stale_after_minutes`.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from atmpvault.errors import IntegrityError, UpstreamBusy, UpstreamUnavailable, VaultError
from atmpvault.repository.remote import (
    PENDING_REF,
    UpstreamMoved,
    UpstreamUnreachable,
    fetch,
    push,
)

if TYPE_CHECKING:
    from atmpvault.archive.core.domain import Domain
    from atmpvault.archive.core.vault import Vault
    from atmpvault.config import Settings
    from atmpvault.repository.fastimport import NewCommit

SYNCED_FILE = "upstream.json"  # in the vault: when this copy last reached the upstream


class Upstream:
    """The vault's shared upstream, named in its local settings ("upstream": URL)."""

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        url = vault.settings.upstream
        assert url, "a vault without an upstream has no Upstream"
        self.url = url

    def sync(self) -> int:
        """Fetch the upstream tip and fast-forward the local branch to it (the caller holds
        the lock); how many commits came in."""
        store = self.vault.store
        try:
            tip = fetch(store.path, self.url)
        except UpstreamUnreachable as exc:
            raise UpstreamUnavailable(f"upstream unreachable ({exc}); nothing written") from None
        head = store.head()
        self._synced()
        if tip is None or tip == head:
            return 0
        if head is not None and not store.is_ancestor(head, tip):
            if store.is_ancestor(tip, head):  # a write moves the branch only after its push
                raise IntegrityError(
                    f"the upstream {self.url} was moved back (its tip {tip[:12]} lacks "
                    f"{store.count(tip, head)} commit(s) of this vault, up to {head[:12]}); "
                    "nothing local was discarded; restore the upstream from a "
                    "workstation's copy"
                )
            raise IntegrityError(
                f"the upstream {self.url} no longer holds this vault's history (rewritten "
                f"or force-moved: its tip {tip[:12]} does not descend from {head[:12]}); "
                "nothing local was discarded; restore the upstream from a workstation's copy"
            )
        came = store.count(head, tip)
        store.move_branch(tip, head)
        return came

    def publish(self, commits: list[NewCommit], parent: str | None) -> list[str]:
        """Write `commits` on top of `parent` beside the branch, push them, then move the
        branch: the upstream has them before this vault reports them written."""
        vault, store = self.vault, self.vault.store
        # A commit left pending by a lost race or a killed writer is not an ancestor of
        # this one: fast-import would refuse to move the ref over it.
        store.delete_ref(PENDING_REF)
        shas = store.commit_many(commits, parent, ref=PENDING_REF)
        tags = [name for new in commits for name, _text in new.tags]
        vault.fault("before-push")
        try:
            push(store.path, self.url, shas[-1], parent, tags)
        except (UpstreamMoved, UpstreamUnreachable) as exc:
            for name in tags:  # written with the commit; the upstream never took them
                store.delete_ref(f"refs/tags/{name}")
            if isinstance(exc, UpstreamMoved):
                raise UpstreamBusy(f"another workstation wrote first ({exc})") from None
            raise UpstreamUnavailable(f"upstream unreachable ({exc}); nothing written") from None
        vault.fault("after-push")
        store.move_branch(shas[-1], parent)
        self._synced()
        return shas

    def _synced(self) -> None:
        path = self.vault.path / SYNCED_FILE
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        path.write_text(json.dumps({"url": self.url, "synced_at": stamp}) + "\n")


def last_synced(vault_path: Path) -> float | None:
    """Seconds since this copy last reached its upstream (None: never)."""
    try:
        data = json.loads((vault_path / SYNCED_FILE).read_text(encoding="utf-8"))
        then = datetime.fromisoformat(data["synced_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return max(0.0, time.time() - then.timestamp())


# -- setting a team up ---------------------------------------------------------------------


def local_url(url: str) -> str:
    """A URL as settings.json keeps it: a plain path made absolute (any cwd then works)."""
    if "://" in url or (":" in url.split("/")[0] and not Path(url).exists()):
        return url  # ssh://, git://, https://, file://, or scp-like host:path
    return str(Path(url).resolve())


def set_upstream(vault_path: Path, url: str | None) -> None:
    """Name the upstream in the vault's local settings file, other keys kept."""
    from atmpvault.config import LOCAL_SETTINGS
    from atmpvault.files import write_atomically

    path = vault_path / LOCAL_SETTINGS
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    if url is None:
        data.pop("upstream", None)
    else:
        data["upstream"] = url
    write_atomically(path, (json.dumps(data, indent=2) + "\n").encode("utf-8"))


def init_shared(settings: Settings, domains: tuple[Domain, ...], path: Path) -> str:
    """A new shared upstream at `path`, seeded with a new vault's configuration (its one
    commit); the tip."""
    import tempfile

    from atmpvault.archive.core.vault import REPO_DIR, Vault
    from atmpvault.repository.remote import init_shared as init_bare
    from atmpvault.repository.remote import push_all

    init_bare(path)
    with tempfile.TemporaryDirectory(prefix="atmpvault-seed-") as folder:
        seed = settings._replace(vault=Path(folder) / "seed", upstream=None)
        with Vault.create(seed, domains) as vault:
            head = vault.store.head()
            assert head is not None
            push_all(seed.vault / REPO_DIR, str(path.resolve()))
    return head


def publish(vault: Vault, url: str) -> int:
    """Make this vault's history the content of a new, empty shared repository and its
    upstream from now on; how many commits were published."""
    from atmpvault.repository.remote import push_all

    url = local_url(url)
    with vault.writing(catch_up=False):
        if vault.settings.upstream:
            raise VaultError(f"this vault already publishes to {vault.settings.upstream}")
        try:
            if fetch(vault.store.path, url) is not None:
                raise VaultError(f"{url} is not empty: publish needs a new, empty repository")
            push_all(vault.store.path, url)
        except UpstreamUnreachable as exc:
            raise UpstreamUnavailable(f"upstream unreachable ({exc}); nothing published") from None
        set_upstream(vault.path, url)
    return vault.store.count()


def clone(settings: Settings, domains: tuple[Domain, ...], url: str) -> Vault:
    """A workstation vault at settings.vault from the upstream `url`, projections built."""
    from atmpvault.archive.core.vault import REPO_DIR, Vault
    from atmpvault.repository.git import GitStore
    from atmpvault.repository.remote import clone_bare

    path = settings.vault
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise VaultError(f"{path} is not empty; choose a new or empty directory")
    url = local_url(url)
    path.mkdir(parents=True, exist_ok=True)
    try:
        clone_bare(url, path / REPO_DIR)
    except UpstreamUnreachable as exc:
        raise UpstreamUnavailable(f"upstream unreachable ({exc}); nothing cloned") from None
    GitStore.configure(path / REPO_DIR)
    set_upstream(path, url)
    vault = Vault.open(settings._replace(upstream=url), domains)
    Upstream(vault)._synced()
    return vault


def behind(vault: Vault) -> tuple[int, int]:
    """(commits the upstream has that this copy lacks, commits of this copy it lacks),
    fetched now; the local branch does not move."""
    store = vault.store
    try:
        tip = fetch(store.path, Upstream(vault).url)
    except UpstreamUnreachable as exc:
        raise UpstreamUnavailable(f"upstream unreachable ({exc})") from None
    head = store.head()
    if tip is None or head is None:
        return (0 if tip is None else store.count(None, tip)), (store.count() if tip is None else 0)
    return store.count(head, tip), store.count(tip, head)
