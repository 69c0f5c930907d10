"""circadia's own span patterns: the credential formats people paste into a chat.

Each :class:`Pattern` names a kind, a regex, the group whose span is the secret (0: the whole
match) and optionally a check the matched value must pass (to keep "my password is too short"
a sentence). Every regex is linear in the text: fixed anchors, bounded repetitions, and keyword
anchors written as look-behinds instead of ``\\b`` - ``\\b`` never matches between ``_`` and a
letter, which is how ``DB_PASSWORD=`` and ``GITHUB_TOKEN=`` used to slip through.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# values that name or stand for a secret rather than being one
PLACEHOLDER = re.compile(
    r"^(?:<[^>]*>?|\$\{?[\w.]*\}?|\{\{.*|%\(.*|\*+|x{3,}|\.{3}|…|your[\w\-]*|my[\-_]?(?:password|token|key|secret)\w*|"
    r"changeme|change[_\-]?me|example\w*|placeholder|redacted|dummy|none|null|nil|true|false|undefined|"
    r"required|optional|empty|string|str|int|bytes|password|secret|token|hidden)$",
    re.I,
)
# references in code: os.environ[...], getenv(...), self.password, config.token, f(x)
CODE_REF = re.compile(r"^(?:os\.|process\.env|self\.|this\.|config\.|settings\.|env\[|request\.|req\.|args\.|input\(|getpass)|[(\[]", re.I)
# a variable named after a secret (confirm_password, new_token) or a keyword of code, not a value
CODE_NAME = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*_(?:password|passwd|pwd|pass|secret|token|key)s?$|"
                       r"^[a-z][a-z0-9]*_?(?:password|passwd|pwd|secret|token|key)_[a-z0-9_]+$|"
                       r"^(?:raise|return|pass|lambda|yield|await|not|and|or|if|else|elif|in|is|def|class|import|"
                       r"from|self|cls|new|function|const|let|var|nullptr|NULL)$")
# words that follow "password is ..." in sentences about passwords, not in passwords
STOPWORDS = frozenset("""
a an the my your his her our their its this that these those it not no too very so still now being been
stored saved hashed encrypted salted wrong incorrect correct invalid valid expired expiring required optional
empty blank long short weak strong secure insecure same different case-sensitive case sensitive on in at under
over only just also never always shown sent reset changed set needed missing ok okay fine good bad hidden
visible displayed generated random unique easy hard simple complex something anything nothing what which how
where why when who probably definitely actually mandatory written printed on-screen there here all both
either neither one two three four five six seven eight nine ten some any more less enough case too-short
""".split())


@dataclass(frozen=True)
class Pattern:
    kind: str
    regex: re.Pattern[str]
    group: int | str = 0  # 0: the whole match is the secret
    check: Callable[[str, re.Match[str]], bool] | None = None


def _value_ok(value: str) -> bool:
    value = value.strip().strip("\"'`")
    return bool(value) and not PLACEHOLDER.match(value) and not CODE_REF.search(value) and not CODE_NAME.match(value)


def key_value(value: str, _m: re.Match[str] | None = None) -> bool:
    """A value assigned to an API-key/token-like name is a secret when it is not a placeholder or
    a reference, and looks like a key (a digit, or at least 20 characters)."""
    value = value.strip("\"'`")
    return _value_ok(value) and len(value) >= 8 and (any(c.isdigit() for c in value) or len(value) >= 20)


def password_value(value: str, _m: re.Match[str] | None = None) -> bool:
    """A value assigned to a password-like name: anything that is not a placeholder or reference."""
    return _value_ok(value) and len(value.strip("\"'`")) >= 3


def phrase_value(value: str, m: re.Match[str]) -> bool:
    """In "my password is X": X is the password when quoted, when it holds a digit or a symbol, or
    when it is a word that ends the clause and is not an ordinary word of a sentence about passwords."""
    if m.group("q"):
        return True
    if not _value_ok(value) or value.lower() in STOPWORDS:
        return False
    if any(not (c.isalpha() or c in "-'") for c in value):  # a digit or a symbol
        return True
    rest = m.string[m.end() : m.end() + 12]
    return bool(re.match(r"\s*(?:$|[.,;:!?)\n]|and\b|for\b|but\b|so\b|-)", rest))


def _kw(words: str) -> str:
    """A keyword anchored like a name: at a start, after a non-alphanumeric (``_`` included)."""
    return rf"(?<![A-Za-z0-9])(?:{words})"


KEY_WORDS = (
    r"(?:x[_\-])?api[_\-]?key|apikey|secret[_\-]?access[_\-]?key|access[_\-]?key(?:[_\-]?id)?|account[_\-]?key|"
    r"secret[_\-]?key|private[_\-]?key|signing[_\-]?key|encryption[_\-]?key|master[_\-]?key|client[_\-]?secret|"
    r"app[_\-]?secret|session[_\-]?secret|webhook[_\-]?secret|secret|access[_\-]?token|auth[_\-]?token|"
    r"refresh[_\-]?token|bot[_\-]?token|bearer[_\-]?token|token|credentials?"
)
PASSWORD_WORDS = r"pass(?:word|wd|phrase|code)|pwd|pw|db[_\-]?pass"
# a quoted value (spaces allowed: "correct horse battery staple"), or a bare one without trailing punctuation
VALUE = r"(?P<q>[\"'`])?(?P<v>(?(q)[^\"'`\n]{1,200}|[^\s\"'`,;]{0,199}[^\s\"'`,;.!?:)\]]))(?(q)[\"'`])"
ASSIGN = r"[\"'\]]{0,2}[ \t]{0,10}(?::=|=>|[:=])[ \t]{0,10}"

PATTERNS: list[Pattern] = [
    Pattern("private_key", re.compile(
        r"-----BEGIN (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY(?: BLOCK)?-----.*?"
        r"(?:-----END (?:[A-Z0-9]{1,20} ){0,4}PRIVATE KEY(?: BLOCK)?-----|\Z)", re.S)),
    Pattern("putty_key", re.compile(r"PuTTY-User-Key-File-\d: .*?(?:Private-MAC: \S+|\Z)", re.S)),
    Pattern("aws_access_key", re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ABIA|ACCA|A3T[A-Z0-9])[0-9A-Z]{16}(?![A-Z0-9])")),
    Pattern("github_token", re.compile(r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{40,255})")),
    Pattern("gitlab_token", re.compile(r"(?<![A-Za-z0-9])gl(?:pat|dt|rt|ptt|cbt|ft|oas)-[A-Za-z0-9_\-]{20,64}")),
    Pattern("slack_token", re.compile(r"(?<![A-Za-z0-9])xox[abposre]-[A-Za-z0-9\-]{10,200}")),
    Pattern("slack_webhook", re.compile(r"hooks\.slack\.com/(?:services|workflows|triggers)/([A-Za-z0-9_/\-]{10,200})"), 1),
    Pattern("discord_webhook", re.compile(r"discord(?:app)?\.com/api/webhooks/\d{5,30}/([A-Za-z0-9_\-]{20,200})"), 1),
    Pattern("stripe_key", re.compile(r"(?<![A-Za-z0-9])(?:sk|rk|pk|whsec)_(?:live|test)_[A-Za-z0-9]{16,200}")),
    Pattern("openai_key", re.compile(r"(?<![A-Za-z0-9])sk-(?:proj-|ant-(?:api\d\d-)?|svcacct-|admin-)?[A-Za-z0-9_\-]{20,300}")),
    Pattern("google_api_key", re.compile(r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{35}")),
    Pattern("huggingface_token", re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,100}")),
    Pattern("npm_token", re.compile(r"(?<![A-Za-z0-9])npm_[A-Za-z0-9]{30,100}")),
    Pattern("pypi_token", re.compile(r"(?<![A-Za-z0-9])pypi-[A-Za-z0-9_\-]{50,300}")),
    Pattern("sendgrid_key", re.compile(r"(?<![A-Za-z0-9])SG\.[A-Za-z0-9_\-]{16,40}\.[A-Za-z0-9_\-]{20,80}")),
    Pattern("shopify_token", re.compile(r"(?<![A-Za-z0-9])shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}")),
    Pattern("digitalocean_token", re.compile(r"(?<![A-Za-z0-9])do[opr]_v1_[a-f0-9]{64}")),
    Pattern("databricks_token", re.compile(r"(?<![A-Za-z0-9])dapi[a-f0-9]{32}(?:-\d)?")),
    Pattern("square_token", re.compile(r"(?<![A-Za-z0-9])sq0(?:atp|csp|idp)-[A-Za-z0-9_\-]{20,60}")),
    Pattern("twilio_key", re.compile(r"(?<![A-Za-z0-9])SK[0-9a-f]{32}(?![A-Za-z0-9])")),
    Pattern("telegram_bot_token", re.compile(r"(?<![A-Za-z0-9])\d{8,10}:AA[A-Za-z0-9_\-]{33}")),
    Pattern("jwt", re.compile(r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,2000}\.eyJ[A-Za-z0-9_\-]{8,4000}\.[A-Za-z0-9_\-]{8,2000}")),
    Pattern("azure_storage_key", re.compile(r"(?i:AccountKey|SharedAccessKey)\s{0,3}=\s{0,3}([A-Za-z0-9+/]{20,200}={0,2})"), 1),
    Pattern("azure_sas", re.compile(r"[?&]sig=([A-Za-z0-9%+/=]{16,200})"), 1),
    Pattern("bearer_token", re.compile(r"(?i)(?<![A-Za-z0-9])bearer\s{1,5}([A-Za-z0-9_\-\.=+/~]{16,2000})"), 1),
    Pattern("basic_auth", re.compile(r"(?i)(?<![A-Za-z0-9])basic\s{1,5}([A-Za-z0-9+/]{8,1000}={0,2})(?![A-Za-z0-9+/=])"), 1,
            lambda v, m: "authoriz" in m.string[max(0, m.start() - 40) : m.start()].lower()),
    Pattern("basic_auth", re.compile(r"(?<!\S)(?:-u|--user)\s{1,5}[^\s:]{1,100}:(\S{1,200})"), 1),
    # scheme://user:password@host, also with an empty user (redis://:pw@host)
    Pattern("url_credentials", re.compile(r"(?i)\b[a-z][a-z0-9+.\-]{0,30}://[^\s:/@]{0,200}:([^\s@/]{1,200})@"), 1),
    Pattern("cli_password", re.compile(r"(?:\blogin\b|(?<!\S)-u\s{1,5}\S{1,100})[^\n]{0,80}?(?<!\S)-p\s{1,5}(\S{1,200})"), 1),
    Pattern("cli_password", re.compile(r"(?<!\S)--pass(?:word)?(?:=|\s{1,5})(\S{1,200})"), 1, password_value),
    Pattern("netrc_password", re.compile(r"\bmachine\s{1,5}\S{1,200}\s{1,5}login\s{1,5}\S{1,200}\s{1,5}password\s{1,5}(\S{1,200})"), 1),
    Pattern("pin", re.compile(r"(?i)(?<![A-Za-z0-9])PIN(?:\s{1,3}(?:code|number))?\s{0,3}(?:is|was|:|=)\s{0,3}(\d{4,8})(?!\d)"), 1),
    # NAME=value / name: "value" with a key-like or password-like name (any prefix: MY_API_KEY, DB_PASSWORD)
    Pattern("assigned_secret", re.compile(rf"(?i){_kw(KEY_WORDS)}{ASSIGN}{VALUE}"), "v", key_value),
    Pattern("assigned_password", re.compile(rf"(?i){_kw(PASSWORD_WORDS)}{ASSIGN}{VALUE}"), "v", password_value),
    # "my password is X", "the wifi password at the office is X", 'passphrase: "four words here"'
    Pattern("password_phrase", re.compile(
        rf"(?i){_kw(r'pass(?:word|wd|phrase|code|wort)|pw')}(?![A-Za-z0-9])[^.\n]{{0,40}}?(?<![A-Za-z0-9])"
        rf"(?:is|was|are|lautet|(?<![!=<>])=(?!=)|:)(?![A-Za-z0-9])\s{{0,5}}{VALUE}"), "v", phrase_value),
    Pattern("generic_secret", re.compile(r"(?i)(?<![A-Za-z0-9])(?:key|token|secret)\s{1,3}(?:is\s{1,3})?[\"']?([A-Za-z0-9_\-]{32,200})(?![A-Za-z0-9_\-])"), 1),
]


def pattern_spans(text: str) -> list[tuple[str, int, int]]:
    """``(kind, start, end)`` of every pattern hit in ``text`` (may overlap; merged by the caller)."""
    out = []
    for p in PATTERNS:
        for m in p.regex.finditer(text):
            start, end = m.span(p.group)
            if end <= start:
                continue
            if p.check is not None and not p.check(m.group(p.group), m):
                continue
            out.append((p.kind, start, end))
    return out
