"""The command group, its global options and the helpers every command uses.

Heavy libraries (SQLAlchemy, GitPython) are imported inside the commands that need
them, so `--help` and light commands answer quickly.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from atmpvault.config import Settings, load_settings
from atmpvault.errors import VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault


class VaultGroup(click.Group):
    """Turns domain errors into one line on stderr and their exit code; loads a
    workflow's commands only when one of them is used (see `add_lazy`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy: dict[str, tuple[str, str]] = {}  # command -> (register hook, one-line help)

    def add_lazy(self, register: str, commands: Sequence[tuple[str, str]]) -> None:
        """Commands a workflow's `register` hook adds, known by name and one-line help until
        one is used; `--help` lists them without importing the workflow's CLI."""
        for name, text in commands:
            self.lazy[name] = (register, text)

    def resolve(self, name: str) -> click.Command | None:
        """A command by name, its workflow's commands loaded on first use."""
        if name not in self.commands and name in self.lazy:
            from atmpvault.archive.core.domain import load

            register = self.lazy[name][0]
            load(register)(self)
            for other, (ref, _text) in self.lazy.items():
                if ref == register and other not in self.commands:
                    raise RuntimeError(f"{register} did not add the command {other!r} it declares")
        return self.commands.get(name)

    def load_all(self) -> dict[str, click.Command]:
        """Every command, each workflow's loaded (for tests and tools that walk them all)."""
        for name in list(self.lazy):
            self.resolve(name)
        return dict(self.commands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return self.resolve(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(self.lazy))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's listing, with the declared help of commands not loaded yet."""
        names = [n for n in self.list_commands(ctx)
                 if n not in self.commands or not self.commands[n].hidden]  # fmt: skip
        if not names:
            return
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = [
            (n, self.commands[n].get_short_help_str(limit) if n in self.commands
             else click.Command(n, help=self.lazy[n][1]).get_short_help_str(limit))
            for n in names
        ]  # fmt: skip
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = vault_first(args)
        twice = repeated_option(self, args)
        if twice is not None:
            raise click.UsageError(f"option {twice} is given more than once; give it once", ctx)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        from atmpvault.errors import UpstreamBusy

        args = (list(ctx._protected_args), list(ctx.args))  # click consumes them
        try:
            deadline = time.monotonic() + RETRY_SECONDS
            for attempt in itertools.count(1):
                try:
                    return super().invoke(ctx)
                except UpstreamBusy:
                    if time.monotonic() >= deadline:
                        raise
                    if attempt == NOTE_AFTER:
                        say("note: other workstations are writing to the upstream; trying again")
                    ctx._protected_args, ctx.args = list(args[0]), list(args[1])
                    wait_a_little(attempt)
        except VaultError as exc:
            click.echo(f"atmpvault: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:
            sys.stderr.close()
            ctx.exit(1)


# A write another workstation's push beat is built again on the new tip, for as long as
# this: a count of attempts would let a busy colleague starve it (two writers pushing
# back to back can win eight times in a row), a time bounds what the user waits.
RETRY_SECONDS = 120.0
NOTE_AFTER = 3  # lost races before the user is told why the command takes longer


def wait_a_little(attempt: int) -> None:
    """Back off before building a write again: growing to a cap, with jitter, so the
    workstations that lost a race do not all push again at the same moment."""
    import random

    time.sleep(random.uniform(0.05, 0.4) * min(attempt, 4))  # one attempt takes about 0.5 s


def vault_first(args: list[str]) -> list[str]:
    """`--vault PATH` is taken after the command too (`atmpvault ls --vault V`): moved first."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest += args[i:]
            break
        if arg == "--vault" and i + 1 < len(args):
            front += args[i : i + 2]
            i += 2
            continue
        (front if arg.startswith("--vault=") else rest).append(arg)
        i += 1
    return front + rest


def repeated_option(command: click.Command, args: Sequence[str]) -> str | None:
    """The first option taking one value that `args` give twice (click would keep the last
    silently: `--since A --since B` is a mistake to point out, not to guess at)."""
    options = {name: p for p in command.params if isinstance(p, click.Option) for name in p.opts}
    seen: set[str] = set()
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            return None
        if not arg.startswith("-") or arg == "-":
            sub = command.resolve(arg) if isinstance(command, VaultGroup) else None
            if isinstance(command, click.Group) and sub is None:
                sub = command.commands.get(arg)
            if sub is not None:
                return repeated_option(sub, args[i:])
            continue
        long = arg.startswith("--")
        name = arg.partition("=")[0] if long else arg[:2]
        option = options.get(name)
        if option is None or option.is_flag or option.count:
            continue
        if not ("=" in arg if long else len(arg) > 2):
            i += option.nargs  # its value, even one that looks like an option
        if not option.multiple:
            if option.name in seen:
                return name
            seen.add(option.name or name)
    return None


@click.group(cls=VaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--vault",
    "vault_path",
    type=click.Path(path_type=Path),
    help="The vault directory (default: $ATMPVAULT_HOME, then ./vault).",
)
@click.version_option(package_name="atmpvault")
@click.pass_context
def cli(ctx: click.Context, vault_path: Path | None) -> None:
    """A version-controlled archive for cell and gene therapy manufacturing records."""
    ctx.obj = load_settings(vault_path, None, os.environ)


# -- helpers ------------------------------------------------------------------------------


def settings_for(ctx: click.Context, user: str | None = None) -> Settings:
    settings: Settings = ctx.find_root().obj
    if user:
        settings = settings._replace(user=user)
    return settings


def pass_vault(func: Callable[..., Any]) -> Callable[..., Any]:
    """Open the vault named by --vault for the command, and close it afterwards."""

    @click.pass_context
    @functools.wraps(func)
    def wrapper(ctx: click.Context, *args: Any, **kwargs: Any) -> Any:
        with open_vault(ctx, kwargs.get("user")) as vault:
            return func(vault, *args, **kwargs)

    return wrapper


def open_vault(ctx: click.Context, user: str | None = None) -> Vault:
    """The vault named by --vault, with every workflow, telling the user of any rebuild;
    the command refused (AccessDenied) if the acting user may not run it."""
    from atmpvault.archive.core import access
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.domains import domains

    settings = settings_for(ctx, user)
    vault = Vault.open(settings, domains(), say)
    try:
        access.authorise(vault, command_name(ctx))
    except BaseException:
        vault.close()
        raise
    if not vault.controlled and settings.access_note:
        say(
            "note: this vault is not access-controlled (it has no users); "
            "'atmpvault users add' makes it so"
        )
    elif vault.controlled and user:
        say(f"note: --user is ignored in an access-controlled vault; acting as {vault.actor}")
    stale_note(vault)
    return vault


def stale_note(vault: Vault) -> None:
    """Say on stderr when this copy of a shared vault is older than the team allows."""
    if vault.settings.upstream is None:
        return
    from atmpvault.archive.core.upstream import last_synced

    age = last_synced(vault.path)
    limit = vault.settings.stale_after_minutes * 60
    if age is None or age > limit:
        ago = "never" if age is None else f"{age / 60:.0f} minutes ago"
        say(f"note: this copy last reached its upstream {ago}; 'atmpvault sync' updates it")


def command_name(ctx: click.Context) -> str:
    """The command as the access table names it: "lot release", "ls"."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def exit_with(code: int) -> NoReturn:
    """End the command with this exit code, its output already given (no sys.exit)."""
    click.get_current_context().exit(code)


def undelivered(problems: list[str]) -> None:
    """What a write kept but could not deliver (a notice, a list missing): named on
    stderr, one line each, and the command exits 1."""
    for problem in problems:
        click.echo(f"atmpvault: {problem}", err=True)
    if problems:
        exit_with(1)


def say(message: str) -> None:
    """A one-line notice on stderr (e.g. a projection rebuilt after an upgrade)."""
    click.echo(f"atmpvault: {message}", err=True)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON only.")


def today_for(vault: Vault, value: str | None) -> date:
    """`--today` as typed (inside the vault's date range), else the real today: both
    calendar days in the vault's time zone."""
    from atmpvault.archive.core import values

    dates = vault.config.dates
    return values.day(value, "--today", dates) if value else dates.today()


today_option = click.option(
    "--today",
    hidden=True,
    metavar="DATE",
    help="Take this date as today (for tests and reproducible reports).",
)
user_option = click.option(
    "--user", help="Who is acting (default: $ATMPVAULT_USER, git user.name, the OS login)."
)


def showing_progress(quiet: bool) -> bool:
    """Whether `progress` will draw a bar: stdout is a terminal and not --json."""
    return not quiet and sys.stdout.isatty()


@contextmanager
def progress(length: int, label: str, quiet: bool) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr while stdout is a terminal; nothing with --json or in a pipe."""
    if not showing_progress(quiet):
        yield None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


ELLIPSIS = "\u2026"
MIN_CUT = 10  # a text column is never cut narrower than this (or its header)


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """A plain aligned table for people, fitted to the terminal's width (see `fit`)."""
    cells = [[_cell(v) for v in row] for row in rows]
    natural = [len(h) for h in headers]
    for row in cells:
        natural = [max(w, len(c)) for w, c in zip(natural, row, strict=True)]
    widths = fit(natural, headers, cells, terminal_width())
    if widths != natural:  # a header is never cut (see fit)
        cells = [[_cut(c, w) for c, w in zip(row, widths, strict=True)] for row in cells]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [list(headers), *cells]
    ]
    click.echo("\n".join(lines))  # one write: click looks at the terminal on every echo


def _cell(value: Any) -> str:
    # One line per row: a reason typed with a newline must not break the table (a line
    # break is never printable, so a printable text is kept as it is).
    text = "" if value is None else str(value)
    return text if text.isprintable() else " ".join(text.splitlines())


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + ELLIPSIS


def fit(
    widths: list[int], headers: Sequence[str], cells: list[list[str]], limit: int | None
) -> list[int]:
    """Column widths that fit `limit`: the widest text column is cut first, one at a time.

    Only columns of text (some cell holds a space: a title, a reason, a summary) are cut:
    ids, times and commits are copied from listings, and a cut one would name nothing.
    When even that is not enough the table is left wider than the terminal.
    """
    if limit is None:
        return widths
    widths = list(widths)
    text = [any(" " in row[i] for row in cells) for i in range(len(widths))]
    floors = [min(w, max(len(h), MIN_CUT)) for w, h in zip(widths, headers, strict=True)]
    excess = sum(widths) + 2 * (len(widths) - 1) - limit
    while excess > 0:
        cuttable = [i for i, w in enumerate(widths) if text[i] and w > floors[i]]
        if not cuttable:
            break
        widest = max(cuttable, key=lambda i: (widths[i], i))
        widths[widest] -= 1
        excess -= 1
    return widths


def terminal_width() -> int | None:
    """The terminal's width ($COLUMNS first); None when stdout is not a terminal.

    A pipe or a file gets every cell whole, whatever $COLUMNS says (test runners and
    CI set it): scripts read tables too, and --json is not always what they use.
    """
    if not sys.stdout.isatty():
        return None
    return shutil.get_terminal_size().columns


def moment_for(vault: Vault, value: str, start_of_day: bool = False) -> datetime:
    """A --as-of/--until time (the end of what it names) or --since (its start), in UTC;
    typed without an offset, it is a date or time in the vault's time zone."""
    from atmpvault.archive.core import values

    return values.when(value, vault.config.zone, start_of_day)


def when_option(vault: Vault, value: str | None, start_of_day: bool = False) -> str | None:
    """`moment_for` in the stored form of a time, or None if the option is not given."""
    if value is None:
        return None
    from atmpvault.archive.core import values

    return values.iso(moment_for(vault, value, start_of_day))


def distinct_times(times: Sequence[str]) -> list[str]:
    """Stored times cut to seconds, else milliseconds, else in full: whichever first keeps
    every two different times apart, so a time copied from a listing names one write."""
    for width in (19, 23, 26):
        if len({t[:width] for t in times}) == len(set(times)):
            return [t[:width] for t in times]
    return [t[:26] for t in times]


def show_version(data: dict[str, Any]) -> None:
    for key in (
        "id", "version", "status", "program", "type", "title", "lot", "filename",
        "size", "pages", "sha256", "recorded_at", "user", "reason", "commit",
    ):  # fmt: skip
        click.echo(f"{key:12} {'' if data.get(key) is None else data[key]}")
    if data.get("searchable"):
        click.echo(f"{'searchable':12} yes")
    else:
        click.echo(
            f"{'searchable':12} no: {data.get('unsearchable_reason') or 'no text extracted'}"
        )
    for key, value in sorted(data.get("meta", {}).items()):
        click.echo(f"{'meta.' + key:12} {value}")


def list_versions(rows: Iterable[Any]) -> None:
    table(
        [(r.id, r.version, r.program, r.type, r.lot, r.status, r.title) for r in rows],
        ["ID", "V", "PROGRAM", "TYPE", "LOT", "STATUS", "TITLE"],
    )
