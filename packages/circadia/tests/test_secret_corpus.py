"""The redactor against two corpora written for these tests (tests/corpora/):

- ``secrets.jsonl``: realistic fake credentials of many kinds, each in a chat sentence; every one
  must be redacted, and only its span (the sentence around it stays);
- ``benign.txt``: ordinary chat lines with numbers, code, URLs and the words password / token /
  key; at most 2% may be altered.

``pytest -s packages/circadia/tests/test_secret_corpus.py -k score`` prints both scores.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from circadia.redaction import find_secrets, redact
from circadia.redaction.checksums import iban_ok, is_card_number, luhn_ok
from circadia.redaction.patterns import pattern_spans
from circadia.redaction.second_pass import detect_secrets_spans

CORPORA = Path(__file__).parent / "corpora"
SECRETS = [json.loads(line) for line in (CORPORA / "secrets.jsonl").read_text().splitlines() if line.strip()]
BENIGN = [line for line in (CORPORA / "benign.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
MAX_ALTERED = 0.02


def _leaks(case: dict) -> list[str]:
    clean, _ = redact(case["text"])
    return [s for s in case["secrets"] if s in clean]


def test_corpora_are_big_enough():
    assert len(SECRETS) >= 60 and len({c["kind"] for c in SECRETS}) >= 25
    assert len(BENIGN) >= 200
    joined = "\n".join(BENIGN).lower()
    assert all(w in joined for w in ("password", "token", "key", "http", "def ", "select "))
    assert sum(any(ch.isdigit() for ch in line) for line in BENIGN) >= 80


@pytest.mark.parametrize("case", SECRETS, ids=[f"{i:02d}-{c['kind']}" for i, c in enumerate(SECRETS)])
def test_every_secret_is_redacted_and_only_its_span(case):
    clean, kinds = redact(case["text"])
    assert kinds and "[REDACTED:" in clean
    assert not _leaks(case), clean
    # span redaction: every ordinary word outside the secrets survives (the sentence is kept)
    outside = case["text"]
    for s in case["secrets"]:
        outside = outside.replace(s, " ")
    outside = re.sub(r"-----[A-Z ]+-----", " ", outside)  # a private key's armour goes with the key
    words = {w for w in re.findall(r"(?<![\w/.:@=+-])[A-Za-z]{4,}(?![\w/.:@=+-])", outside)}
    assert all(w in clean for w in words), sorted(w for w in words if w not in clean)


def test_benign_corpus_is_almost_never_altered():
    altered = [line for line in BENIGN if redact(line)[0] != line]
    assert len(altered) <= MAX_ALTERED * len(BENIGN), altered


def test_score(capsys):
    """Prints the two scores (run with -s to see them)."""
    redacted = sum(not _leaks(c) for c in SECRETS)
    kinds = len({c["kind"] for c in SECRETS})
    altered = sum(redact(line)[0] != line for line in BENIGN)
    with capsys.disabled():
        print(f"\nsecret corpus: redacted {redacted}/{len(SECRETS)} ({kinds} kinds); "
              f"benign corpus: altered {altered}/{len(BENIGN)} ({100 * altered / len(BENIGN):.1f}%)")
    assert redacted == len(SECRETS) and altered <= MAX_ALTERED * len(BENIGN)


@pytest.mark.parametrize("text,expected", [
    ("My password is Tr0ub4dor&3 for the router", "My password is [REDACTED:password_phrase] for the router"),
    ("DB_PASSWORD=#DtQEHTDL%bF and MYSQL_USER=shop", "DB_PASSWORD=[REDACTED:assigned_password] and MYSQL_USER=shop"),
    ("REDIS_URL=redis://:7sMCEhcSGI!*@cache.internal:6379/0", "REDIS_URL=redis://:[REDACTED:url_credentials]@cache.internal:6379/0"),
    ('my passphrase is "correct horse battery staple" for the vault', 'my passphrase is "[REDACTED:password_phrase]" for the vault'),
    ("pw: Kx7!mQ2#vR for the NAS", "pw: [REDACTED:assigned_password] for the NAS"),
    ("card 4526 0181 5908 3012, exp 08/27", "card [REDACTED:card_number], exp 08/27"),
])
def test_span_redaction_keeps_the_sentence(text, expected):
    assert redact(text)[0] == expected


@pytest.mark.parametrize("case", SECRETS[:40], ids=[c["kind"] for c in SECRETS[:40]])
def test_redaction_is_idempotent(case):
    once = redact(case["text"])[0]
    assert redact(once)[0] == once  # a placeholder is never mistaken for a new secret


def test_underscore_prefixed_names_are_caught():
    """``\\b`` never matches between ``_`` and a letter: these all leaked before."""
    for name in ("AWS_SECRET_ACCESS_KEY", "DATABASE_PASSWORD", "DB_PASSWORD", "MY_API_KEY", "GITHUB_TOKEN"):
        clean, kinds = redact(f"{name}=Zq8v2LmN4pR7xT1k")
        assert "Zq8v2LmN4pR7xT1k" not in clean and clean.startswith(f"{name}="), (name, clean)


def test_checksums_decide_numbers():
    assert luhn_ok("4526018159083012") and not luhn_ok("4526018159083013")
    assert is_card_number("4526 0181 5908 3012") and is_card_number("3799-603082-46287")
    assert not is_card_number("4526 0181 5908 3013")  # Luhn fails
    assert not is_card_number("49 151 2345 6789 0")  # grouped like a phone number, not a card
    assert iban_ok("DE89 3704 0044 0532 0130 00") and not iban_ok("DE88 3704 0044 0532 0130 00")
    assert not iban_ok("DE89 3704 0044 0532 0130")  # German IBANs have 22 characters
    assert redact("order 4526 0181 5908 3013 shipped")[0] == "order 4526 0181 5908 3013 shipped"
    assert redact("ref DE88370400440532013000")[0] == "ref DE88370400440532013000"


def test_second_pass_finds_what_our_patterns_miss():
    """detect-secrets' plugins are really consulted: a Mailchimp key has no pattern of ours."""
    text = "mailchimp c19eb20f0ac31976c9c7825418fe5f3c-us14 for the newsletter list"
    assert not pattern_spans(text)
    kinds = {k for k, _, _ in detect_secrets_spans(text)}
    assert "mailchimp_access_key" in kinds
    assert find_secrets(text) and "c19eb20f0ac3" not in redact(text)[0]


def test_second_pass_keyword_value_stops_at_the_space():
    """detect-secrets' keyword plugin takes the rest of the line as the value; we keep the sentence."""
    text = "password: hunter2-orange and some more words"
    spans = [(s, e) for kind, s, e in detect_secrets_spans(text) if kind == "secret_keyword"]
    assert spans and all(text[s:e] == "hunter2-orange" for s, e in spans)
    assert redact(text)[0].endswith(" and some more words")
