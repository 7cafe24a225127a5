"""A regulatory event checked before it is written: its trigger, its details, what it answers.

Review track, meeting type and format, letter kind and response time, resubmission
class, the granted meeting date, the document it records and a note: each applies to
some triggers only, some are required by one. An extension of a review is checked
against the review it extends.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from atmpvault.archive.core import values
from atmpvault.archive.regulatory.applications import (
    ANSWERS,
    LETTER_KINDS,
    MAX_NOTE,
    MAX_RESPONSE_DAYS,
    MEETING_FORMATS,
    MEETING_TYPES,
    RESUBMISSION_CLASSES,
    REVIEWS,
    TRIGGERS,
    Application,
    Regulatory,
    choice,
    event_id,
)
from atmpvault.errors import InvalidInput, VaultError

if TYPE_CHECKING:
    from atmpvault.archive.core.vault import Vault
    from atmpvault.archive.regulatory.rules import Rules


def checked_fields(vault: Vault, rules: Rules, trigger: str, **given: Any) -> dict[str, Any]:
    """An event's details (review, meeting type, letter kind and response days, the
    document it records, a note) checked against its trigger; a letter that expects a
    response takes the rules file's response time unless one is given."""
    review = choice(given["review"], REVIEWS, "review")
    meeting_type = given["meeting_type"]
    meeting_type = choice(
        meeting_type.upper() if meeting_type else None, MEETING_TYPES, "meeting type"
    )
    letter_kind = choice(given["letter_kind"], LETTER_KINDS, "letter kind")
    response_days = given["response_days"]
    meeting_date, meeting_format = given["meeting_date"], given["meeting_format"]
    resubmission_class = given["resubmission_class"]
    only = {
        "--review": (review, ("bla-received", "review-designated")),
        "--meeting-type": (meeting_type, ("meeting-request-received",)),
        "--letter-kind": (letter_kind, ("fda-letter-received",)),
        "--response-days": (response_days, ("fda-letter-received",)),
        "--meeting-date": (meeting_date, ("meeting-granted",)),
        "--meeting-format": (meeting_format, ("meeting-granted",)),
        "--class": (resubmission_class, ("resubmission-received",)),
    }
    for option, (value, owners) in only.items():
        if value is not None and trigger not in owners:
            raise InvalidInput(f"{option} applies only to {' and '.join(owners)}, not {trigger}")
    needed = {
        "bla-received": ("--review", review),
        "review-designated": ("--review", review),
        "meeting-request-received": ("--meeting-type", meeting_type),
        "fda-letter-received": ("--letter-kind", letter_kind),
        "meeting-granted": ("--meeting-date, the date FDA granted", meeting_date),
        "resubmission-received": ("--class 1 or 2", resubmission_class),
    }
    if trigger in needed and needed[trigger][1] is None:
        raise InvalidInput(f"{trigger} needs {needed[trigger][0]}")
    if response_days is not None and not 1 <= response_days <= MAX_RESPONSE_DAYS:
        raise InvalidInput(f"--response-days must be 1 to {MAX_RESPONSE_DAYS}")
    if letter_kind is not None and response_days is None:
        letter = rules.letter_kinds.get(letter_kind)
        if letter is not None and letter.expects_response:
            if letter.response_days is None:
                raise InvalidInput(
                    f"a {letter_kind} expects a response: give --response-days "
                    "(the days the letter allows)"
                )
            response_days = letter.response_days
    if meeting_date is not None:
        vault.config.dates.check(meeting_date, "--meeting-date")
    doc = given["doc"]
    if doc is not None:
        from atmpvault.archive.documents.versions import Documents

        doc = Documents(vault).show(values.doc_id(doc)).id
    return {
        "review": review,
        "meeting_type": meeting_type,
        "response_days": response_days,
        "letter_kind": letter_kind,
        "meeting_date": meeting_date,
        "meeting_format": choice(meeting_format, MEETING_FORMATS, "meeting format"),
        "resubmission_class": choice(
            resubmission_class, RESUBMISSION_CLASSES, "resubmission class"
        ),
        "doc": doc,
        "note": values.text(given["note"], "--note", MAX_NOTE),
    }


def check_extension(vault: Vault, target: Application, of: str, on: date, rules: Rules) -> None:
    """FDA extends a review that is under way: one with a goal, not yet acted on and
    not already extended."""
    from atmpvault.archive.regulatory.calendar import milestone_calendar

    goals = {t for r in rules.rules if r.supersedes for ts in r.anchor.values() for t in ts}
    found = milestone_calendar(
        vault, on, app=target.id, start=vault.config.dates.earliest, closed=True
    ).milestones
    mine = [m for m in found if m.event == of and m.rule in goals]
    if not mine:
        raise VaultError(f"{of} has no review goal to extend")
    for goal in mine:
        c = goal.closure
        if c is not None and c.on <= on:
            what = "already extended" if c.state == "superseded" else f"{c.state}"
            raise VaultError(
                f"the review of {of} is {what} ({goal.key}: {c.state} on "
                f"{c.on.isoformat()} by {c.evidence or c.by}); it cannot be extended"
            )
        for rule in rules.rules:
            if rule.supersedes and goal.rule in rule.anchor.get("review-extended", ()):
                extended = rule.offset.apply(goal.due, None)  # type: ignore[arg-type]
                if extended is not None and extended < on:
                    raise VaultError(
                        f"extending {goal.key} (due {goal.due.isoformat()}) would put the new "
                        f"goal on {extended.isoformat()}, before FDA's notice on "
                        f"{on.isoformat()}; check the notice's date"
                    )


def answered(
    registry: Regulatory, application: Application, trigger: str, on: date, of: str | None
) -> str | None:
    """The event an answering event answers: `of` if given (it must be one it can
    answer, dated on or before it), else the latest such event of the application."""
    answers = ANSWERS.get(trigger)
    if answers is None:
        if of is not None:
            raise InvalidInput(f"--of applies only to {', '.join(ANSWERS)}, not {trigger}")
        return None
    earlier = [
        e
        for e in registry.events(application.id)
        if e.trigger in answers and not e.voided and e.on <= on
    ]
    if of is not None:
        wanted = event_id(of)
        chosen = [e for e in earlier if e.id == wanted]
        if not chosen:
            raise VaultError(
                f"{wanted} is not a {' or '.join(answers)} of {application.id} dated on or "
                f"before {on.isoformat()}; {trigger} answers one"
            )
        return wanted
    if not earlier:
        raise VaultError(
            f"{trigger} answers a {' or '.join(answers)}, and {application.id} has none "
            f"dated on or before {on.isoformat()}"
        )
    return earlier[-1].id


def check_trigger(application: Application, trigger: str) -> None:
    if application.kind not in TRIGGERS[trigger]:
        fitting = [t for t, kinds in TRIGGERS.items() if application.kind in kinds]
        raise InvalidInput(
            f"{trigger} is not recorded against an {application.kind.upper()}; "
            f"triggers for {application.id}: {', '.join(fitting)}"
        )
