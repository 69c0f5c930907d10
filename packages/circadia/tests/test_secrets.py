"""Secrets are redacted, and never reach training files, dreams or the retrieval store."""

import pytest

from circadia.data import day_paths, planted_secrets
from circadia.secrets_filter import find_secrets, redact

CASES = [
    ("aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    ("token ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"),
    ("OPENAI_API_KEY=sk-proj-abcdefghijklmnopqrstuvwx", "sk-proj-abcdefghijklmnopqrstuvwx"),
    ("slack xoxb-123456789012-abcdefghij", "xoxb-123456789012-abcdefghij"),
    ("stripe sk_live_abcdefghijklmnop1234", "sk_live_abcdefghijklmnop1234"),
    ("google AIzaSyA1234567890abcdefghijklmnopqrstuv", "AIzaSyA1234567890abcdefghijklmnopqrstuv"),
    ("hf hf_abcdefghijklmnopqrstuvwxyzABCDEFGH", "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH"),
    ("password: hunter2", "hunter2"),
    ("the wifi password at the office is blue-cat-77", "blue-cat-77"),
    ("My password is Tr0ub4dor&3 for the router", "Tr0ub4dor&3"),
    ("db postgres://admin:s3cretpw@db.example.com/app", "s3cretpw"),
    ("Authorization: Bearer abcdefghijklmnop1234", "abcdefghijklmnop1234"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "dozjgNryP4J3jVmNHl0w5N"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA75\n-----END RSA PRIVATE KEY-----", "MIIEowIBAAKCAQEA75"),
    ("api_key = 'abcd1234efgh'", "abcd1234efgh"),
]


@pytest.mark.parametrize("text,secret", CASES)
def test_redact_removes_secret(text, secret):
    clean, kinds = redact(text)
    assert secret not in clean and kinds and "[REDACTED:" in clean


@pytest.mark.parametrize("text", ["I forgot my password yesterday.", "The capital of France is Paris.",
                                  "Use a password manager for your keys.", "The token bucket algorithm limits rates."])
def test_no_false_alarm_on_plain_text(text):
    assert find_secrets(text) == []


def test_planted_secrets_never_reach_training_or_store(tmp_path, tiny_model_dir):
    """Three simulated days (with pasted keys and passwords) and nights: no file of the home -
    the day log memories.jsonl included, it keeps nothing raw - holds a planted secret."""
    from circadia.simulate import simulate_nights
    from circadia.testing import tiny_night_config

    secrets = planted_secrets()
    assert len(secrets) >= 5
    days = day_paths()
    shipped = b"".join(p.read_bytes() for p in (days[0], days[1], days[5]))
    assert sum(s.encode() in shipped for s in secrets) >= 3  # the day logs do paste them
    for store in ("numpy", "chroma"):
        home = tmp_path / store
        cfg = tiny_night_config(tiny_model_dir, store=store, train={"iters": 1})
        # days 1, 2, 3, 5 and 6 hold the planted secrets
        simulate_nights(home, 3, cfg, days=[days[0], days[1], days[5]], model_dir=tiny_model_dir, log=None)
        assert b"[REDACTED:" in (home / "memories.jsonl").read_bytes()
        checked = 0
        for path in home.rglob("*"):
            if not path.is_file():
                continue
            data = path.read_bytes()
            for s in secrets:
                assert s.encode() not in data, f"secret leaked into {path}"
            checked += 1
        assert checked > 5
        assert list(home.rglob("train.jsonl"))
