"""Every rule of the FDA rules file, with dated cases (REGULATORY.md §1).

Derivation is a pure function of events and rules, so these build events in memory
and call `derive` directly; the CLI and the stored records are tested in
test_calendar.py.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from atmpvault.archive.regulatory.applications import TRIGGERS, Application, Event
from atmpvault.archive.regulatory.derivation import Milestone, derive
from atmpvault.archive.regulatory.rules import add_months, packaged_rules, parse_rules
from atmpvault.errors import InvalidInput

RULES = packaged_rules()
D = date.fromisoformat


def application(
    kind: str = "ind", status: str = "active", status_on: str | None = None
) -> Application:
    return Application(
        id=f"{kind.upper()}-012345",
        kind=kind,
        number="012345",
        program="CART-19",
        status=status,
        recorded_at="2026-01-01T00:00:00.000000+00:00",
        user="qa.tester",
        status_on=status_on,
    )


def event(number: int, trigger: str, on: str, **fields: Any) -> Event:
    return Event(
        id=f"EV-{number:06d}",
        app="IND-012345",
        program="CART-19",
        trigger=trigger,
        on=D(on),
        version=1,
        recorded_at="2026-01-01T00:00:00.000000+00:00",
        user="qa.tester",
        **fields,
    )


def due_dates(found: list[Milestone], rule: str) -> list[str]:
    return [m.due.isoformat() for m in found if m.rule == rule]


# -- calendar-month arithmetic ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        ("2027-01-31", 1, "2027-02-28"),  # clamped at month end
        ("2028-01-31", 1, "2028-02-29"),  # leap year
        ("2026-08-31", 6, "2027-02-28"),
        ("2027-08-31", 6, "2028-02-29"),
        ("2027-04-30", 10, "2028-02-29"),
        ("2026-04-30", 10, "2027-02-28"),
        ("2026-12-31", 2, "2027-02-28"),
        ("2026-10-31", 1, "2026-11-30"),
        ("2026-05-15", 0, "2026-05-15"),
        ("2026-03-31", -1, "2026-02-28"),
        ("2028-02-29", 12, "2029-02-28"),
        ("2028-02-29", 48, "2032-02-29"),
        ("2026-11-30", 3, "2027-02-28"),
    ],
)
def test_add_months_clamps_at_month_end(start: str, months: int, expected: str) -> None:
    assert add_months(D(start), months) == D(expected)


# -- one-off rules: (rule, app kind, events, review/..., expected due) --------------------------

ONE_OFF_CASES: list[tuple[str, str, list[tuple[str, str, dict[str, Any]]], str]] = [
    ("IND_EFFECTIVE", "ind", [("ind-received", "2026-01-05", {})], "2026-02-04"),
    ("IND_EFFECTIVE", "ind", [("ind-received", "2027-12-15", {})], "2028-01-14"),
    ("IND_EFFECTIVE", "ind", [("ind-received", "2028-02-01", {})], "2028-03-02"),  # leap Feb
    ("IND_EFFECTIVE", "ind", [("ind-received", "2027-02-01", {})], "2027-03-03"),
    ("SAFETY_15D", "ind", [("safety-case", "2026-12-20", {})], "2027-01-04"),
    ("SAFETY_15D", "ind", [("fatal-safety-case", "2028-02-25", {})], "2028-03-11"),
    ("SAFETY_7D", "ind", [("fatal-safety-case", "2028-02-25", {})], "2028-03-03"),
    ("SAFETY_7D", "ind", [("fatal-safety-case", "2027-02-25", {})], "2027-03-04"),
    ("SAFETY_FOLLOWUP", "ind", [("safety-followup-info", "2026-03-01", {})], "2026-03-16"),
    ("NEW_INVESTIGATOR", "ind", [("investigator-added", "2026-01-31", {})], "2026-03-02"),
    ("NEW_INVESTIGATOR", "ind", [("investigator-added", "2028-01-31", {})], "2028-03-01"),
    ("PROTOCOL_CHANGE", "ind", [("protocol-change-planned", "2026-05-01", {})], "2026-05-01"),
    ("HOLD_LETTER", "ind", [("clinical-hold-imposed", "2026-07-15", {})], "2026-08-14"),
    ("HOLD_RESPONSE", "ind", [("hold-response-received", "2026-12-10", {})], "2027-01-09"),
    ("RMAT_DESIGNATION", "ind", [("rmat-request-received", "2026-01-01", {})], "2026-03-02"),
    ("BTD_DESIGNATION", "ind", [("btd-request-received", "2028-01-01", {})], "2028-03-01"),
    ("BLA_FILING", "bla", [("bla-received", "2027-01-31", {"review": "standard"})], "2027-04-01"),
    ("BLA_DAY74", "bla", [("bla-received", "2027-01-31", {"review": "standard"})], "2027-04-15"),
    ("BLA_DAY74", "bla", [("bla-received", "2028-01-01", {"review": "priority"})], "2028-03-15"),
    # the action goals run from the filing date (day 60), in calendar months
    ("BLA_STANDARD", "bla", [("bla-received", "2027-01-31", {"review": "standard"})], "2028-02-01"),
    ("BLA_STANDARD", "bla", [("bla-received", "2027-03-01", {"review": "standard"})], "2028-02-29"),
    ("BLA_STANDARD", "bla", [("bla-received", "2026-03-01", {"review": "standard"})], "2027-02-28"),
    ("BLA_STANDARD", "bla", [("bla-received", "2026-07-02", {"review": "standard"})], "2027-06-30"),
    ("BLA_PRIORITY", "bla", [("bla-received", "2027-01-31", {"review": "priority"})], "2027-10-01"),
    ("BLA_PRIORITY", "bla", [("bla-received", "2026-07-02", {"review": "priority"})], "2027-02-28"),
    ("BLA_PRIORITY", "bla", [("bla-received", "2027-07-02", {"review": "priority"})], "2028-02-29"),
    (
        "BLA_REVIEW_EXTENDED",
        "bla",
        [
            ("bla-received", "2027-03-01", {"review": "standard"}),
            ("review-extended", "2028-01-15", {"of": "EV-000001"}),
        ],
        "2028-05-29",
    ),
    (
        "BLA_REVIEW_EXTENDED",
        "bla",
        [
            ("bla-received", "2026-07-02", {"review": "priority"}),
            ("review-extended", "2027-01-10", {"of": "EV-000001"}),
        ],
        "2027-05-28",
    ),
    ("PAS", "bla", [("pas-received", "2027-10-31", {})], "2028-02-29"),
    # FDA extends a supplement's review: the goal + 2 months (the PAS goal is superseded)
    (
        "SUPPLEMENT_EXTENDED",
        "bla",
        [
            ("pas-received", "2026-03-15", {}),
            ("review-extended", "2026-06-01", {"of": "EV-000001"}),
        ],
        "2026-09-15",
    ),
    # after a complete response letter: class 1 (2 months) and class 2 (6 months) goals
    (
        "RESUBMISSION_CLASS1",
        "bla",
        [("resubmission-received", "2026-01-31", {"resubmission_class": "1"})],
        "2026-03-31",
    ),
    (
        "RESUBMISSION_CLASS2",
        "bla",
        [("resubmission-received", "2026-08-31", {"resubmission_class": "2"})],
        "2027-02-28",
    ),
    # a serious, unexpected adverse experience with the licensed product: 15 days
    ("ALERT_15D", "bla", [("postmarketing-alert-case", "2026-12-20", {})], "2027-01-04"),
    ("PAS", "bla", [("pas-received", "2026-10-31", {})], "2027-02-28"),
    ("PAS", "bla", [("pas-received", "2026-03-15", {})], "2026-07-15"),
    ("CBE30", "bla", [("cbe30-submitted", "2026-02-01", {})], "2026-03-03"),
    ("CBE30", "bla", [("cbe30-submitted", "2028-02-01", {})], "2028-03-02"),
    ("CBE0", "bla", [("cbe0-submitted", "2026-02-01", {})], "2026-02-01"),
    ("BPDR", "bla", [("bpdr-discovered", "2026-11-20", {})], "2027-01-04"),
    ("BPDR", "bla", [("bpdr-discovered", "2028-01-20", {})], "2028-03-05"),
    (
        "FDA_LETTER_RESPONSE",
        "ind",
        [
            (
                "fda-letter-received",
                "2026-04-01",
                {"letter_kind": "information-request", "response_days": 30},
            )
        ],
        "2026-05-01",
    ),
    (
        "FDA_LETTER_RESPONSE",
        "bla",
        [
            (
                "fda-letter-received",
                "2028-02-15",
                {"letter_kind": "complete-response", "response_days": 14},
            )
        ],
        "2028-02-29",
    ),
]

# Formal meetings: request received on 2026-01-01 (and a leap-year case for Type A).
# type: reply, held by, briefing package, preliminary responses, minutes
MEETING_CASES: dict[str, tuple[str, str, str, str, str | None, str]] = {
    "A": ("2026-01-01", "2026-01-15", "2026-01-31", "2026-01-01", "2026-01-29", "2026-03-02"),
    "B-EOP": ("2026-01-01", "2026-01-15", "2026-03-12", "2026-01-21", "2026-03-07", "2026-04-11"),
    "B": ("2026-01-01", "2026-01-22", "2026-03-02", "2026-01-31", "2026-02-28", "2026-04-01"),
    "C": ("2026-01-01", "2026-01-22", "2026-03-17", "2026-01-29", "2026-03-12", "2026-04-16"),
    "D": ("2026-01-01", "2026-01-15", "2026-02-20", "2026-01-01", "2026-02-15", "2026-03-22"),
    "INTERACT": (
        "2026-01-01",
        "2026-01-22",
        "2026-03-17",
        "2026-01-01",
        "2026-03-12",
        "2026-04-16",
    ),
}
LEAP_MEETING = ("A", "2028-02-10", "2028-02-24", "2028-03-11", "2028-02-10", "2028-03-09")


def meeting_key(meeting_type: str) -> str:
    return meeting_type.replace("-", "_")


@pytest.mark.parametrize(("rule", "kind", "events", "expected"), ONE_OFF_CASES)
def test_one_off_rule(
    rule: str, kind: str, events: list[tuple[str, str, dict[str, Any]]], expected: str
) -> None:
    recorded = [event(i, t, on, **extra) for i, (t, on, extra) in enumerate(events, 1)]
    found = derive(application(kind), recorded, RULES, today=D("2026-01-01"))
    assert due_dates(found, rule) == [expected]
    made = next(m for m in found if m.rule == rule)
    spec = RULES.get(rule)
    assert (made.kind, made.source, made.produces) == (spec.kind, spec.source, spec.produces)
    assert made.trigger == recorded[-1].trigger and made.trigger_date == recorded[-1].on
    assert made.event == recorded[-1].id and made.app == f"{kind.upper()}-012345"
    assert made.days_left == (made.due - D("2026-01-01")).days


@pytest.mark.parametrize("meeting_type", list(MEETING_CASES))
def test_meeting_timelines(meeting_type: str) -> None:
    on, reply, held, package, preliminary, minutes = MEETING_CASES[meeting_type]
    found = derive(
        application(),
        [event(1, "meeting-request-received", on, meeting_type=meeting_type)],
        RULES,
        today=D(on),
    )
    key = meeting_key(meeting_type)
    assert due_dates(found, f"MEETING_{key}_REPLY") == [reply]
    assert due_dates(found, f"MEETING_{key}_HELD") == [held]
    assert due_dates(found, f"MEETING_{key}_PACKAGE") == [package]
    assert due_dates(found, f"MEETING_{key}_PRELIMINARY") == ([preliminary] if preliminary else [])
    assert due_dates(found, "MEETING_MINUTES") == [minutes]
    other_types = {m.rule for m in found} - {
        f"MEETING_{key}_{part}" for part in ("REPLY", "HELD", "PACKAGE", "PRELIMINARY")
    }
    assert other_types == {"MEETING_MINUTES"}


def test_meeting_in_a_leap_february() -> None:
    meeting_type, on, reply, held, package, preliminary = LEAP_MEETING
    found = derive(
        application(),
        [event(1, "meeting-request-received", on, meeting_type=meeting_type)],
        RULES,
        today=D(on),
    )
    assert due_dates(found, "MEETING_A_REPLY") == [reply]
    assert due_dates(found, "MEETING_A_HELD") == [held]
    assert due_dates(found, "MEETING_A_PACKAGE") == [package]
    assert due_dates(found, "MEETING_A_PRELIMINARY") == [preliminary]


# -- yearly reports ---------------------------------------------------------------------------

# (rule, kind, events, today, expected (cycle, due) pairs)
YEARLY_CASES: list[tuple[str, str, list[tuple[str, str]], str, list[tuple[int, str]]]] = [
    # in effect 30 days after receipt (2026-02-04); first anniversary 2027-02-04
    ("IND_ANNUAL", "ind", [("ind-received", "2026-01-05")], "2026-06-01", [(1, "2027-04-05")]),
    # a recorded ind-effective date wins over receipt + 30 days
    (
        "IND_ANNUAL",
        "ind",
        [("ind-received", "2026-01-05"), ("ind-effective", "2026-02-20")],
        "2026-06-01",
        [(1, "2027-04-21")],
    ),
    # anniversaries of 2028-02-29 fall on Feb 28, then on Feb 29 again in 2032
    ("IND_ANNUAL", "ind", [("ind-effective", "2028-02-29")], "2029-01-01", [(1, "2029-04-29")]),
    (
        "IND_ANNUAL",
        "ind",
        [("ind-effective", "2028-02-29")],
        "2031-06-01",
        # every cycle begun by today stays owed until done (item 3), and the next one
        [(1, "2029-04-29"), (2, "2030-04-29"), (3, "2031-04-29"), (4, "2032-04-29")],
    ),
    # the current cycle (overdue) and the next one
    (
        "IND_ANNUAL",
        "ind",
        [("ind-effective", "2026-01-10")],
        "2027-04-01",
        [(1, "2027-03-11"), (2, "2028-03-10")],
    ),
    # 60 days after the anniversary crosses into March in a leap year
    ("IND_ANNUAL", "ind", [("ind-effective", "2027-01-01")], "2027-06-01", [(1, "2028-03-01")]),
    ("BLA_ANNUAL", "bla", [("bla-approved", "2028-02-29")], "2028-06-01", [(1, "2029-04-29")]),
    (
        "BLA_ANNUAL",
        "bla",
        [("bla-approved", "2028-02-29")],
        "2031-12-31",
        [(1, "2029-04-29"), (2, "2030-04-29"), (3, "2031-04-29"), (4, "2032-04-29")],
    ),
    ("BLA_ANNUAL", "bla", [("bla-approved", "2026-12-31")], "2027-01-15", [(1, "2028-02-29")]),
    # periodic adverse experience reports: quarters from the approval date, each ending the
    # day before the next 3-month anniversary (04-30 - 1), due 30 days after its last day
    (
        "PADER_QUARTERLY",
        "bla",
        [("bla-approved", "2026-01-31")],
        "2026-06-01",
        [(1, "2026-05-29"), (2, "2026-08-29")],
    ),
    # then yearly from the fourth year, due 60 days after the year's last day
    ("PADER_ANNUAL", "bla", [("bla-approved", "2026-01-31")], "2029-03-01", [(4, "2030-03-31")]),
]


@pytest.mark.parametrize(("rule", "kind", "events", "today", "expected"), YEARLY_CASES)
def test_yearly_rule(
    rule: str,
    kind: str,
    events: list[tuple[str, str]],
    today: str,
    expected: list[tuple[int, str]],
) -> None:
    recorded = [event(i, t, on) for i, (t, on) in enumerate(events, 1)]
    found = derive(application(kind), recorded, RULES, today=D(today))
    assert [(m.cycle, m.due.isoformat()) for m in found if m.rule == rule] == expected


def test_yearly_rule_covers_a_requested_window() -> None:
    found = derive(
        application(),
        [event(1, "ind-effective", "2026-01-10")],
        RULES,
        today=D("2026-06-01"),
        end=D("2029-12-31"),
    )
    assert due_dates(found, "IND_ANNUAL") == ["2027-03-11", "2028-03-10", "2029-03-11"]


def test_yearly_reports_stop_when_the_application_is_not_active() -> None:
    found = derive(
        application(status="withdrawn", status_on="2026-12-31"),
        [event(1, "ind-effective", "2026-01-10")],
        RULES,
        today=D("2026-06-01"),
    )
    assert due_dates(found, "IND_ANNUAL") == []
    # A cycle begun before the IND went inactive is still owed; none after.
    later = derive(
        application(status="inactive", status_on="2027-06-01"),
        [event(1, "ind-effective", "2026-01-10")],
        RULES,
        today=D("2029-06-01"),
    )
    assert due_dates(later, "IND_ANNUAL") == ["2027-03-11"]


def test_quarterly_reports_stop_after_three_years_then_run_yearly() -> None:
    found = derive(application("bla"), [event(1, "bla-approved", "2026-01-31")], RULES,
                   today=D("2031-06-01"))  # fmt: skip
    quarterly = [(m.cycle, m.due.isoformat()) for m in found if m.rule == "PADER_QUARTERLY"]
    assert [c for c, _ in quarterly] == list(range(1, 13))
    assert quarterly[-1] == (12, "2029-03-01")
    annual = [(m.cycle, m.due.isoformat()) for m in found if m.rule == "PADER_ANNUAL"]
    assert annual == [(4, "2030-03-31"), (5, "2031-03-31"), (6, "2032-03-30")]


def test_review_track_picks_one_action_goal() -> None:
    standard = derive(
        application("bla"), [event(1, "bla-received", "2027-01-31", review="standard")], RULES,
        today=D("2027-01-31"),
    )  # fmt: skip
    priority = derive(
        application("bla"), [event(1, "bla-received", "2027-01-31", review="priority")], RULES,
        today=D("2027-01-31"),
    )  # fmt: skip
    assert {m.rule for m in standard} == {"BLA_FILING", "BLA_DAY74", "BLA_STANDARD"}
    assert {m.rule for m in priority} == {"BLA_FILING", "BLA_DAY74", "BLA_PRIORITY"}


def test_fatal_case_derives_both_reports_and_a_plain_case_one() -> None:
    fatal = derive(
        application(), [event(1, "fatal-safety-case", "2026-03-01")], RULES, D("2026-03-01")
    )
    plain = derive(application(), [event(1, "safety-case", "2026-03-01")], RULES, D("2026-03-01"))
    assert [m.rule for m in fatal] == ["SAFETY_7D", "SAFETY_15D"]
    assert [m.rule for m in plain] == ["SAFETY_15D"]


def test_letter_without_a_response_date_derives_nothing() -> None:
    found = derive(
        application(),
        [event(1, "fda-letter-received", "2026-04-01", letter_kind="filing-letter")],
        RULES,
        D("2026-04-01"),
    )
    assert found == []


def test_a_major_amendment_alone_derives_nothing() -> None:
    # Only FDA's notice that it extends the review (review-extended) moves the goal.
    found = derive(
        application("bla"),
        [event(1, "bla-received", "2026-01-05", review="standard"),
         event(2, "major-amendment-received", "2026-04-01")],
        RULES, D("2026-04-01"),
    )  # fmt: skip
    assert [m.rule for m in found if m.event == "EV-000002"] == []
    alone = derive(application("bla"), [event(1, "review-extended", "2026-04-01")], RULES,
                   D("2026-04-01"))  # fmt: skip
    assert alone == []


def test_milestones_come_in_date_order() -> None:
    found = derive(
        application(),
        [
            event(1, "meeting-request-received", "2026-01-01", meeting_type="C"),
            event(2, "fatal-safety-case", "2026-01-20"),
            event(3, "ind-received", "2025-12-01"),
        ],
        RULES,
        D("2026-01-01"),
    )
    assert [m.due for m in found] == sorted(m.due for m in found)


def test_every_rule_has_dated_cases() -> None:
    covered = {case[0] for case in ONE_OFF_CASES} | {case[0] for case in YEARLY_CASES}
    for meeting_type in MEETING_CASES:
        key = meeting_key(meeting_type)
        covered |= {f"MEETING_{key}_{p}" for p in ("REPLY", "HELD", "PACKAGE", "PRELIMINARY")}
    covered.add("MEETING_MINUTES")
    assert set(RULES.ids()) <= covered


# -- the rules file itself --------------------------------------------------------------------


def test_packaged_rules_cover_regulatory_md_section_1() -> None:
    table = {
        "IND_EFFECTIVE", "IND_ANNUAL", "SAFETY_15D", "SAFETY_7D", "SAFETY_FOLLOWUP",
        "NEW_INVESTIGATOR", "PROTOCOL_CHANGE", "HOLD_LETTER", "HOLD_RESPONSE",
        "RMAT_DESIGNATION", "BTD_DESIGNATION", "BLA_FILING", "BLA_DAY74", "BLA_STANDARD",
        "BLA_PRIORITY", "BLA_REVIEW_EXTENDED", "SUPPLEMENT_EXTENDED", "RESUBMISSION_CLASS1",
        "RESUBMISSION_CLASS2", "PAS", "CBE30", "CBE0", "BLA_ANNUAL", "BPDR", "PADER_QUARTERLY",
        "PADER_ANNUAL", "ALERT_15D",
    }  # fmt: skip
    assert table <= set(RULES.ids())
    for rule in RULES.rules:
        assert rule.source and rule.produces and rule.basis
        assert set(rule.triggers) <= set(TRIGGERS)
        assert ("[unverified]" in rule.source or "unverified" in rule.source) == rule.unverified
    assert RULES.get("BLA_ANNUAL").unverified
    assert RULES.get("MEETING_B_REPLY").unverified and RULES.get("MEETING_B_PACKAGE").unverified
    assert not RULES.get("MEETING_C_REPLY").unverified


def rules_with(change: dict[str, Any], rule_id: str = "IND_EFFECTIVE") -> bytes:
    raw = {"format": 1, "rules": _packaged_json()["rules"]}
    for item in raw["rules"]:
        if item["id"] == rule_id:
            item.update(change)
    return json.dumps(raw).encode()


def _packaged_json() -> dict[str, Any]:
    from importlib import resources

    return json.loads(
        resources.files("atmpvault").joinpath("rules", "fda_milestones.json").read_bytes()
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"triggers": ["ind-recieved"]}, "rule IND_EFFECTIVE: unknown trigger 'ind-recieved'"),
        ({"offset": {"days": "30"}}, "rule IND_EFFECTIVE: bad offset"),
        ({"offset": {"weeks": 4}}, "rule IND_EFFECTIVE: bad offset"),
        ({"offset": {"days": 30, "months": 1}}, "rule IND_EFFECTIVE: bad offset"),
        ({"offset": None}, "rule IND_EFFECTIVE: bad offset"),
        ({"kind": "sponsor due soon"}, "rule IND_EFFECTIVE: unknown kind"),
        ({"source": ""}, "rule IND_EFFECTIVE: 'source' must be non-empty"),
        ({"when": {"colour": "red"}}, "rule IND_EFFECTIVE: 'when' must map"),
        ({"anchor": {"ind-received": ["NO_SUCH_RULE"]}}, "rule IND_EFFECTIVE anchors on unknown"),
        ({"anchor": {"bla-received": ["BLA_FILING"]}}, "rule IND_EFFECTIVE: anchor for 'bla-"),
        ({"repeat": "monthly"}, "rule IND_EFFECTIVE: unknown repeat"),
        ({"id": "BLA_FILING"}, "rule BLA_FILING is defined twice"),
    ],
)
def test_bad_rules_are_refused_naming_the_rule(change: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_rules(rules_with(change), "test rules")
    assert message in str(caught.value)
    assert caught.value.exit_code == 2


def test_anchor_cycles_and_bad_json_are_refused() -> None:
    looped = rules_with({"anchor": {"bla-received": ["BLA_STANDARD"]}}, "BLA_FILING")
    with pytest.raises(InvalidInput, match="BLA_FILING anchors on itself"):
        parse_rules(looped, "test rules")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        parse_rules(b"{", "test rules")
    with pytest.raises(InvalidInput, match="'rules' list"):
        parse_rules(b"[]", "test rules")


def test_rules_lookup_names_unknown_rule() -> None:
    with pytest.raises(InvalidInput, match="unknown rule 'IND_EFFECTIV'") as caught:
        RULES.get("IND_EFFECTIV")
    assert "IND_EFFECTIVE" in str(caught.value)  # the message lists the rules there are
    found = RULES.get("IND_EFFECTIVE")
    assert (found.id, found.triggers, found.kind, found.source) == (
        "IND_EFFECTIVE", ("ind-received",), "status", "21 CFR 312.40(b)",
    )  # fmt: skip
    assert found.offset.describe() == "+30 days"
