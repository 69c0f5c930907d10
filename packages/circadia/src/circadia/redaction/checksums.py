"""Numbers that are secrets only when their checksum says so: payment card numbers (Luhn, issuer
prefix, the usual digit grouping) and IBANs (ISO 13616 mod-97, per-country length).

A random 16-digit number passes Luhn one time in ten, so a card must also start like a card
(Visa, Mastercard, Amex, Discover, Diners, JCB, UnionPay, Maestro) and be written as cards are
(no separators, or groups of 4, or Amex/Diners 4-6-5 / 4-6-4): a phone number ``+49 151 2345 6789``
or a tracking number is not a card.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# digits with optional single spaces or dashes between them, not glued to other digits/dashes/plus
CARD = re.compile(r"(?<![\d+\-])\d(?:[ \-]?\d){12,18}(?![\d\-])")
CARD_GROUPS = {(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3), (4, 4, 4, 1), (4, 4, 4, 2), (4, 4, 4, 3), (4, 4, 5)}
CARD_PREFIX = re.compile(r"4|5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)|3[47]|3(?:0[0-5]|[68])|6(?:011|5|4[4-9]|2)|35(?:2[89]|[3-8])|50|5[6-8]|6[39]")

IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
# ISO 13616 lengths (SWIFT IBAN registry) of the countries people paste most; others: 15..34
IBAN_LENGTH = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
    "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25,
    "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26, "UA": 29,
}


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_card_number(text: str) -> bool:
    """``text`` (digits with optional spaces/dashes) is a plausible payment card number."""
    groups = tuple(len(g) for g in re.split(r"[ \-]", text))
    digits = "".join(ch for ch in text if ch.isdigit())
    if not 13 <= len(digits) <= 19:
        return False
    if len(groups) > 1 and groups not in CARD_GROUPS:
        return False
    return bool(CARD_PREFIX.match(digits)) and luhn_ok(digits)


def iban_ok(text: str) -> bool:
    """ISO 13616: country length and mod 97 == 1 (spaces ignored)."""
    iban = text.replace(" ", "").upper()
    want = IBAN_LENGTH.get(iban[:2])
    if (want is not None and len(iban) != want) or not 15 <= len(iban) <= 34:
        return False
    rearranged = iban[4:] + iban[:4]
    try:
        number = int("".join(str(int(ch, 36)) for ch in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def find_cards(text: str) -> Iterator[tuple[int, int]]:
    """Spans of Luhn-valid card numbers (spaced, dashed or not)."""
    for m in CARD.finditer(text):
        if is_card_number(m.group()):
            yield m.span()


def find_ibans(text: str) -> Iterator[tuple[int, int]]:
    """Spans of IBANs whose checksum is right (spaced in groups of four or not)."""
    for m in IBAN.finditer(text):
        if iban_ok(m.group()):
            yield m.span()
