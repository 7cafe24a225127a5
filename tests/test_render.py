"""Rendering a notice: anything a template cannot do with its values is one
TemplateProblem (one line to the user), never a traceback, and nothing goes out."""

from __future__ import annotations

import pytest

from atmpvault.archive.core.render import render
from atmpvault.errors import TemplateProblem


class Unprintable:
    def __str__(self) -> str:
        raise ValueError("no text for this value")


class Milestone:
    rule = "SAFETY_15D"
    app = "IND-012345"
    due = "2026-03-01"
    days_left = "three"  # -m.days_left: a number was meant


@pytest.mark.parametrize(
    ("context", "words"),
    [
        ({"threshold": "overdue", "overdue_word": Unprintable(), "m": Milestone()},
         "ValueError: no text for this value"),
        ({"threshold": "overdue", "overdue_word": "OVERDUE", "m": Milestone()}, "TypeError"),
        ({"threshold": "overdue"}, "'overdue_word' is undefined"),
    ],
)  # fmt: skip
def test_a_value_a_template_cannot_use_is_one_problem(
    context: dict[str, object], words: str
) -> None:
    with pytest.raises(TemplateProblem) as caught:
        render("regulatory/milestone-alert.txt.j2", context)
    message = str(caught.value)
    assert message.startswith("cannot render template 'regulatory/milestone-alert.txt.j2': ")
    assert words in message and "\n" not in message
