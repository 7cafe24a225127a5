"""ISBT 128 Donation Identification Numbers (ST-001 §2.4.1) and chain-of-identity ids.

A DIN is 13 characters: the FIN of the collecting facility (5: a first character A–N,
P–Z or 1–9, then 4 digits), the year (2 digits) and a sequence number (6 digits). Labels
print it with a check character, ISO 7064 Mod 37-2 over the 13 characters; users type the
14 (e.g. G123498654321H), and a typing error is caught here before anything is written.
"""

from __future__ import annotations

import re

from atmpvault.errors import InvalidInput

# ISO 7064 Mod 37-2: a character's value is its index here; '*' (36) is a check character only.
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_TYPED = frozenset(ALPHABET + ALPHABET[10:36].lower())
_DIGITS = frozenset("0123456789")
# 'O' is not a FIN's first character (it reads as zero), nor is '0'.
_FIN_FIRST = frozenset("ABCDEFGHIJKLMNPQRSTUVWXYZ123456789")

BODY_LENGTH = 13
EXAMPLE = "G123498654321H"

# ISBT 128 data structure 040: FIN + year + 6 alphanumerics. [0-9], not \d: \d is any
# Unicode digit.
COI_RE = re.compile(r"[A-NP-Z1-9][0-9]{4}[0-9]{2}[A-Z0-9]{6}")


def check_character(thirteen: str) -> str:
    """The ISO 7064 Mod 37-2 check character of a 13-character DIN (upper case)."""
    if len(thirteen) != BODY_LENGTH or any(c not in _VALUE or c == "*" for c in thirteen):
        raise InvalidInput(
            f"{_shown(thirteen)} is not 13 characters of A–Z and 0–9; "
            "a check character is computed over a DIN's 13 characters"
        )
    # The rightmost character is weighted 2^1, the next 2^2, and so on.
    total = sum(_VALUE[c] << n for n, c in enumerate(reversed(thirteen), start=1))
    return ALPHABET[(38 - total % 37) % 37]


def din(value: str) -> str:
    """A DIN as typed for --din (13 characters and the check character) in its canonical
    14-character upper-case form; InvalidInput naming the problem if it is not one."""
    raw = value.strip()
    if len(raw) != BODY_LENGTH + 1:
        missing = " (is the check character missing?)" if len(raw) == BODY_LENGTH else ""
        raise InvalidInput(
            f"DIN {_shown(raw)} has {len(raw)} characters; expected 14: the 13-character "
            f"DIN followed by its check character, e.g. {EXAMPLE}{missing}"
        )
    # Checked before upper-casing: str.upper() turns some non-ASCII letters into ASCII ones
    # ('ı' into 'I') and others into two characters ('ß' into 'SS').
    for position, c in enumerate(raw, start=1):
        if c not in _TYPED:
            raise InvalidInput(
                f"DIN {_shown(raw)}: character {position}, {c!r}, is not in the ISBT 128 "
                "alphabet (A–Z and 0–9; '*' only as the check character)"
            )
    typed = raw.upper()
    body, given = typed[:BODY_LENGTH], typed[BODY_LENGTH]
    if body[0] not in _FIN_FIRST:
        raise InvalidInput(
            f"DIN {typed}: the facility identification number (FIN, characters 1–5) must "
            f"start with A–N, P–Z or 1–9, not {body[0]!r}"
        )
    for first, last, what in ((2, 5, "FIN"), (6, 7, "year"), (8, 13, "sequence number")):
        for position in range(first, last + 1):
            if body[position - 1] not in _DIGITS:
                raise InvalidInput(
                    f"DIN {typed}: the {what} (characters {first}–{last}) must be digits; "
                    f"character {position} is {body[position - 1]!r}"
                )
    expected = check_character(body)
    if given != expected:
        raise InvalidInput(
            f"DIN {typed}: check character {given} is wrong; expected {expected} "
            "(ISO 7064 Mod 37-2)"
        )
    return typed


def coi_isbt(value: str) -> bool:
    """Whether `value` has the ISBT 128 chain-of-identity structure (data structure 040):
    FIN (5), year (2) and 6 upper-case letters or digits.

    A predicate only: a vault may use its own coded chain-of-identity ids.
    """
    return COI_RE.fullmatch(value) is not None


def _shown(value: str) -> str:
    text = value if len(value) <= 40 else value[:40] + "..."
    return repr(text)
