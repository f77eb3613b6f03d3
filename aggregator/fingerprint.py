"""Text identity for dedupe: boilerplate stripping, tokens, fingerprints,
MinHash signatures, LSH band keys and the full-text near-duplicate check.

Pure, no IO, no business decisions (dedupe.py decides what merges). Every
value here is stable across processes and machines (no use of Python's
salted hash()), because fingerprints and band keys are stored.

Tokens: Latin-script (and any non-CJK) words are case- and width-folded
word tokens; every CJK character (Han, kana, Hangul) is a token of its own,
so Chinese text, which has no spaces, is compared by character n-grams.
Punctuation is ignored, so curly and straight quotes, or "Top-1" and
"Top 1", never tell two copies apart.

MinHash: written here rather than taken from datasketch because we need only
the signature (datasketch would bring numpy and scipy for it), and our LSH
index is a database table, not datasketch's in-memory one. Each shingle is
hashed once by BLAKE2b into 16 independent 32-bit values (a 64-byte digest,
salted twice for 32), and the signature is the column-wise minimum: the
transposition and min run in C, so a 300-word post costs well under a
millisecond.
"""

from __future__ import annotations

import hashlib
import re
import struct
import unicodedata
from collections.abc import Sequence
from difflib import SequenceMatcher

#: bump when tokens, shingles or hashing change: stored band keys become stale
SIGNATURE_VERSION = 1

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
_CJK_CHAR = re.compile(rf"[{_CJK}]")

# Feed boilerplate that a platform adds around an article, never part of it.
# A tail pattern matches only whole sentences at the very end of the
# whitespace-folded text, a head pattern only the first sentence, so words
# inside the article are never touched.
_START = r"(?:^|(?<=[.!?\"”’)\]»]))\s*"
# The rest of the text: no sentence ends in it, except dots inside a name.
_REST = r"(?:[^.!?]|[.!?](?=\S)){0,200}[.!?]?\s*$"
# One sentence: a dot inside a name ("blog.example.org") does not end it.
_SENTENCE = r"(?:[^.!?]|[.!?](?=\S)){1,160}[.!?](?:\s+|$)"
_ORIGINALLY = (
    r"(?:This (?:post|article|entry) was )?(?:originally|first) "
    r"(?:published|posted|appeared) (?:on|at|in) "
)
_REPOSTED = r"(?:Cross-?posted|Reposted) (?:from|with permission from) "
_TAIL = [
    re.compile(_START + p + _REST, re.IGNORECASE)
    for p in (
        r"The post .{1,300}? appeared first on ",
        r"(?:Continue reading|Keep reading|Read more|Read the (?:full|rest of the) "
        r"(?:post|article|story))\b",
        r"(?:Share this|Share on|Like this)\b",
        _ORIGINALLY,
        _REPOSTED,
    )
]
_HEAD = [re.compile("^" + p + _SENTENCE, re.IGNORECASE) for p in (_ORIGINALLY, _REPOSTED)]
#: a bound on stripping passes: each pass removes one piece of boilerplate
_MAX_STRIP_PASSES = 8

#: texts lighter than this have no fingerprint ("Read more", a one-line link)
MIN_FINGERPRINT_WEIGHT = 15
#: words per shingle (CJK: characters per shingle)
SHINGLE_SIZE = 3
#: MinHash signature length and LSH banding: BANDS bands of ROWS values each.
#: With rows=3, bands=10 a pair at Jaccard 0.8 shares a band with probability
#: 0.999, at 0.5 with 0.74, at 0.1 with 0.01.
SIGNATURE_SIZE = 32
BANDS = 10
ROWS = 3
_UNPACK16 = struct.Struct("<16I").unpack
_SALTS = (b"aggr-mh-0", b"aggr-mh-1")
_MASK63 = (1 << 63) - 1


def strip_boilerplate(text: str) -> str:
    """`text` without feed boilerplate at its start and end."""
    for _ in range(_MAX_STRIP_PASSES):
        before = text
        for pattern in _TAIL:
            text = pattern.sub("", text)
        for pattern in _HEAD:
            text = pattern.sub("", text)
        text = text.strip()
        if text == before:
            break
    return text


def tokens(text: str) -> list[str]:
    """Folded word tokens (CJK: one token per character) of `text`."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return _TOKEN.findall(folded)


def weight(toks: Sequence[str]) -> float:
    """How much text there is, in words: a CJK character counts half a word."""
    cjk = sum(1 for t in toks if len(t) == 1 and _CJK_CHAR.match(t))
    return (len(toks) - cjk) + cjk / 2


def article_tokens(text: str) -> list[str]:
    """Tokens of the article itself: boilerplate stripped, then tokenized."""
    return tokens(strip_boilerplate(text))


def text_fingerprint(text: str) -> str:
    """A hash of the article's words (boilerplate stripped, case and
    punctuation folded); '' for text too short to identify an article."""
    toks = article_tokens(text)
    if weight(toks) < MIN_FINGERPRINT_WEIGHT:
        return ""
    digest = hashlib.sha256(" ".join(toks).encode("utf-8")).hexdigest()
    return f"t{SIGNATURE_VERSION}:{digest[:32]}"


def shingles(toks: Sequence[str], size: int = SHINGLE_SIZE) -> set[str]:
    """The set of `size`-token shingles; a text shorter than size is one shingle."""
    if len(toks) <= size:
        return {" ".join(toks)} if toks else set()
    return {" ".join(toks[i : i + size]) for i in range(len(toks) - size + 1)}


def minhash(shingle_set: set[str]) -> tuple[int, ...]:
    """The MinHash signature (SIGNATURE_SIZE 32-bit values) of a shingle set."""
    if not shingle_set:
        return ()
    data = [s.encode("utf-8") for s in shingle_set]
    sig: list[int] = []
    for salt in _SALTS:
        rows = [_UNPACK16(hashlib.blake2b(d, digest_size=64, salt=salt).digest()) for d in data]
        sig.extend(map(min, zip(*rows, strict=True)))
    return tuple(sig[:SIGNATURE_SIZE])


def band_keys(signature: Sequence[int]) -> list[int]:
    """One 63-bit LSH bucket key per band; entries sharing a key are candidates."""
    if len(signature) < BANDS * ROWS:
        return []
    keys = []
    for b in range(BANDS):
        values = signature[b * ROWS : (b + 1) * ROWS]
        raw = struct.pack(f"<BB{ROWS}I", SIGNATURE_VERSION, b, *values)
        keys.append(
            int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "little") & _MASK63
        )
    return keys


def lsh_keys(text: str, min_weight: float) -> list[int]:
    """The LSH bucket keys of an entry's text; none for text too short to judge."""
    toks = article_tokens(text)
    if weight(toks) < min_weight:
        return []
    return band_keys(minhash(shingles(toks)))


class Prepared:
    """An entry's text, tokenized and shingled once for repeated comparisons."""

    __slots__ = ("shingles", "tokens", "weight")

    def __init__(self, text: str) -> None:
        self.tokens = article_tokens(text)
        self.weight = weight(self.tokens)
        self.shingles = shingles(self.tokens)


def jaccard(a: set[str], b: set[str]) -> float:
    """|a ∩ b| / |a ∪ b|; 0 for two empty sets."""
    if not a and not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def near_score(
    a: Prepared, b: Prepared, threshold: float, min_weight: float, max_replaced: int
) -> float | None:
    """The similarity of two full texts if they are near-duplicates, else None.

    Confirmed on the whole texts, never on a prefix: both must be long enough
    to judge (`min_weight` words), the Jaccard similarity of their shingle
    sets must reach `threshold`, and no passage longer than `max_replaced`
    tokens may differ on both sides. That last rule keeps apart two posts
    that share most of their words but differ in one passage (series posts
    on one template, or a shared introduction with a short different body),
    while scattered small edits and an added note on one side still match.
    """
    if a.weight < min_weight or b.weight < min_weight:
        return None
    smaller, larger = sorted((len(a.shingles), len(b.shingles)))
    if smaller < threshold * larger:  # Jaccard cannot reach threshold: skip the work
        return None
    score = jaccard(a.shingles, b.shingles)
    if score < threshold:
        return None
    if longest_replaced(a.tokens, b.tokens) > max_replaced:
        return None
    return round(score, 4)


#: a run of equal tokens shorter than this does not anchor two texts together:
#: common words ("the", "of a") match by chance inside two different passages
_ANCHOR = 4


def longest_replaced(a: Sequence[str], b: Sequence[str]) -> int:
    """The longest passage that differs on both sides, in tokens.

    Between two consecutive anchors (runs of at least _ANCHOR equal tokens),
    text present only in `a` or only in `b` is an insertion or deletion; text
    present in both is a replaced passage, measured by its shorter side.
    """
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    anchors = [(m.a, m.b, m.size) for m in matcher.get_matching_blocks() if m.size >= _ANCHOR]
    worst = 0
    pos_a = pos_b = 0
    for start_a, start_b, size in [*anchors, (len(a), len(b), 0)]:
        worst = max(worst, min(start_a - pos_a, start_b - pos_b))
        pos_a, pos_b = start_a + size, start_b + size
    return worst
