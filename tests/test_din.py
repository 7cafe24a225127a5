"""ISBT 128 DINs: the ISO 7064 Mod 37-2 check character, and what --din accepts or refuses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atmpvault.archive.custody.din import ALPHABET, check_character, coi_isbt, din
from atmpvault.errors import InvalidInput


@pytest.mark.parametrize(
    ("thirteen", "check"),
    [
        ("G123498654321", "H"),  # the worked examples (REGULATORY.md §4)
        ("A999921123456", "3"),
    ],
)
def test_worked_examples(thirteen: str, check: str) -> None:
    assert check_character(thirteen) == check
    assert din(thirteen + check) == thirteen + check


def test_star_is_a_check_character() -> None:
    # A sum of 2 (mod 37) gives (38 - 2) mod 37 = 36, shown as '*': here 1 x 2^1.
    assert check_character("0000000000001") == "*"
    star = next(b for n in range(1000) if check_character(b := f"A9999{n:08d}") == "*")
    assert din(star + "*") == star + "*"


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("g123498654321h", "G123498654321H"),
        ("G123498654321h", "G123498654321H"),
        ("  G123498654321H ", "G123498654321H"),
        ("\tA9999211234563\n", "A9999211234563"),
    ],
)
def test_accepted_forms(typed: str, canonical: str) -> None:
    assert din(typed) == canonical


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("G123498654321", "has 13 characters; expected 14: the 13-character DIN followed by "
         "its check character, e.g. G123498654321H (is the check character missing?)"),
        ("G123498654321HH", "has 15 characters; expected 14"),
        ("", "DIN '' has 0 characters; expected 14"),
        ("   ", "DIN '' has 0 characters"),
        ("=G1234986543210", "has 15 characters"),
        ("G1234 8654321H", "character 6, ' ', is not in the ISBT 128 alphabet"),
        ("G1234-8654321H", "character 6, '-', is not in the ISBT 128 alphabet"),
        ("G12349865432ßH", "character 13, 'ß', is not in the ISBT 128 alphabet"),
        ("ı123498654321H", "character 1, 'ı', is not in the ISBT 128 alphabet"),
        ("G１23498654321H", "character 2, '１', is not in the ISBT 128 alphabet"),
        ("O123498654321H", "must start with A–N, P–Z or 1–9, not 'O'"),
        ("0123498654321H", "must start with A–N, P–Z or 1–9, not '0'"),
        ("*123498654321H", "must start with A–N, P–Z or 1–9, not '*'"),
        ("G12A498654321H", "the FIN (characters 2–5) must be digits; character 4 is 'A'"),
        ("G1234*8654321H", "the year (characters 6–7) must be digits; character 6 is '*'"),
        ("G12349865432XH", "the sequence number (characters 8–13) must be digits; "
         "character 13 is 'X'"),
        ("G123498654321X", "DIN G123498654321X: check character X is wrong; expected H "
         "(ISO 7064 Mod 37-2)"),
        ("g123498654321x", "DIN G123498654321X: check character X is wrong; expected H"),
        ("A9999211234562", "check character 2 is wrong; expected 3"),
        ("A999921123465" + "3", "check character 3 is wrong"),  # transposed digits
    ],
)  # fmt: skip
def test_refused(typed: str, message: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        din(typed)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    "bad", ["G12349865432", "G1234986543210", "g123498654321", "G12349865432*"]
)
def test_check_character_needs_thirteen_upper_case_alphanumerics(bad: str) -> None:
    with pytest.raises(InvalidInput):
        check_character(bad)


FIN_FIRST = "ABCDEFGHIJKLMNPQRSTUVWXYZ123456789"
bodies = st.builds(
    lambda first, digits: first + digits,
    st.sampled_from(FIN_FIRST),
    st.text(alphabet="0123456789", min_size=12, max_size=12),
)


@given(bodies)
def test_only_the_computed_check_character_is_accepted(body: str) -> None:
    check = check_character(body)
    assert din(body + check) == body + check
    assert din(body.lower() + check.lower()) == body + check
    for other in ALPHABET:
        if other != check:
            with pytest.raises(InvalidInput, match="is wrong; expected"):
                din(body + other)


@given(bodies, st.integers(0, 12), st.sampled_from("0123456789"))
def test_a_changed_digit_is_caught(body: str, position: int, digit: str) -> None:
    # Mod 37-2 catches every single substitution.
    changed = body[:position] + digit + body[position + 1 :]
    if position == 0 or changed == body:
        return
    with pytest.raises(InvalidInput, match="is wrong"):
        din(changed + check_character(body))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("G12349812AB34", True),
        ("A99992100000Z", True),
        ("G123498654321", True),
        ("O12349812AB34", False),  # FIN may not start with O
        ("0123498654321", False),
        ("GA23498654321", False),  # FIN 2-5 digits
        ("G1234A8654321", False),  # year digits
        ("g12349812ab34", False),  # the stored form is upper case
        ("G12349812AB3", False),
        ("G12349812AB345", False),
        ("G12349812AB3*", False),
        ("G1234９812AB34", False),  # a full-width digit
        ("G12349812AB34\n", False),
        ("", False),
    ],
)
def test_coi_isbt(value: str, expected: bool) -> None:
    assert coi_isbt(value) is expected
