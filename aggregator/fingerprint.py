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
the signature (datasketch would bring scipy for it, and hashes each shingle
in Python), and our LSH index is a database table, not datasketch's
in-memory one. Each distinct token is hashed once by BLAKE2b (cached), a
shingle's hash combines its tokens' hashes, and the SIGNATURE_SIZE
permutations are multiply-add-shift hashes applied to every shingle at once
with numpy: a 1,000-word post costs about a tenth of a millisecond.
"""

from __future__ import annotations

import hashlib
import re
import struct
import unicodedata
from collections.abc import Sequence
from difflib import SequenceMatcher
from typing import Any

import numpy as np

from aggregator.model import LshIndex

#: bump when tokens, shingles or MinHash hashing change: stored band keys become stale
SIGNATURE_VERSION = 2
#: bump when tokens or the fingerprint's hashing change: stored fingerprints become stale
FINGERPRINT_VERSION = 1

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+")
_CJK_CHAR = re.compile(rf"[{_CJK}]")
#: splits text into the text between CJK runs (even items) and the runs (odd)
_CJK_RUNS = re.compile(rf"([{_CJK}]+)")
_WORD = re.compile(rf"[^\W{_CJK}]+")
#: for ASCII text, which is its own NFKC form and whose casefold is lower():
#: a token character maps to its lower case, any other character to a space
_ASCII_TOKENS = str.maketrans(
    {c: (c.lower() if _TOKEN.fullmatch(c.lower()) else " ") for c in map(chr, range(128))}
)

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
# Words every pattern above must contain to match (lower-cased): when none
# is in the text (most texts), no pattern can match, and the patterns, which
# try every position of the text, need not run. Characters that re's
# IGNORECASE folds onto ASCII letters but str.lower() does not (long s,
# dotless i, dotted I) send the text down the full path.
_HINTS = (
    "the post ", "reading", "read more", "read the ", "share this", "share on",
    "like this", "originally ", "first ", "posted ",
)  # fmt: skip
_ODD_CASE = ("\u017f", "\u0131", "\u0130")
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
_MASK63 = (1 << 63) - 1


def strip_boilerplate(text: str) -> str:
    """`text` without feed boilerplate at its start and end."""
    low = text.lower()
    if not any(h in low for h in _HINTS) and not any(c in text for c in _ODD_CASE):
        return text.strip()
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
    return _tokens_and_cjk(text)[0]


def _tokens_and_cjk(text: str) -> tuple[list[str], int]:
    """tokens(text), and how many of them are CJK characters (for weight)."""
    if text.isascii():
        # Same tokens as the regex below, from one translate and a split
        # (several times faster); ASCII has no CJK.
        return text.translate(_ASCII_TOKENS).split(), 0
    folded = unicodedata.normalize("NFKC", text).casefold()
    # Same tokens as _TOKEN.findall(folded), faster: each character of a run
    # of CJK is a token of its own (list() splits a run in C), and the words
    # of the text between runs are _TOKEN's other alternative.
    toks: list[str] = []
    cjk = 0
    for i, piece in enumerate(_CJK_RUNS.split(folded)):
        if i % 2:
            toks += piece
            cjk += len(piece)
        elif piece:
            toks += _WORD.findall(piece)
    return toks, cjk


def weight(toks: Sequence[str]) -> float:
    """How much text there is, in words: a CJK character counts half a word."""
    # CJK tokens are single characters: test only those, in one C-level pass.
    cjk = len(_CJK_CHAR.findall("".join([t for t in toks if len(t) == 1])))
    return _weight(len(toks), cjk)


def _weight(count: int, cjk: int) -> float:
    """weight() of `count` tokens of which `cjk` are CJK characters."""
    return (count - cjk) + cjk / 2


def article_tokens(text: str) -> list[str]:
    """Tokens of the article itself: boilerplate stripped, then tokenized."""
    return tokens(strip_boilerplate(text))


def _article_tokens_and_weight(text: str) -> tuple[list[str], float]:
    """article_tokens(text) and their weight(), the text folded once."""
    toks, cjk = _tokens_and_cjk(strip_boilerplate(text))
    return toks, _weight(len(toks), cjk)


def text_fingerprint(text: str) -> str:
    """A hash of the article's words (boilerplate stripped, case and
    punctuation folded); '' for text too short to identify an article."""
    toks = article_tokens(text)
    return _fingerprint(toks, weight(toks))


def _fingerprint(toks: Sequence[str], w: float) -> str:
    if w < MIN_FINGERPRINT_WEIGHT:
        return ""
    digest = hashlib.sha256(" ".join(toks).encode("utf-8")).hexdigest()
    return f"t{FINGERPRINT_VERSION}:{digest[:32]}"


def shingles(toks: Sequence[str], size: int = SHINGLE_SIZE) -> set[str]:
    """The set of `size`-token shingles; a text shorter than size is one shingle."""
    if len(toks) <= size:
        return {" ".join(toks)} if toks else set()
    return {" ".join(toks[i : i + size]) for i in range(len(toks) - size + 1)}


# MinHash permutations: h(x) = (a * x + b) mod 2**64, top 32 bits, for a
# 32-bit shingle hash x and odd 64-bit a (multiply-add-shift hashing, a
# universal family). The constants are fixed (from a seeded BLAKE2b), so
# signatures are the same in every process and on every machine.
_PERM = np.frombuffer(
    hashlib.blake2b(b"aggr-minhash-v2", digest_size=64).digest()
    + hashlib.blake2b(b"aggr-minhash-v2", digest_size=64, salt=b"a").digest()
    + hashlib.blake2b(b"aggr-minhash-v2", digest_size=64, salt=b"b").digest()
    + hashlib.blake2b(b"aggr-minhash-v2", digest_size=64, salt=b"c").digest()
    + hashlib.blake2b(b"aggr-minhash-v2", digest_size=64, salt=b"d").digest()
    + hashlib.blake2b(b"aggr-minhash-v2", digest_size=64, salt=b"e").digest()
    + hashlib.blake2b(b"aggr-minhash-v2", digest_size=64, salt=b"f").digest()
    + hashlib.blake2b(b"aggr-minhash-v2", digest_size=64, salt=b"g").digest(),
    dtype="<u8",
).astype(np.uint64)
_PERM_A = (_PERM[:SIGNATURE_SIZE] | np.uint64(1)).reshape(SIGNATURE_SIZE, 1)
_PERM_B = _PERM[SIGNATURE_SIZE : 2 * SIGNATURE_SIZE].reshape(SIGNATURE_SIZE, 1)
# Odd multipliers that combine SHINGLE_SIZE token hashes into a shingle hash.
_COMBINE = [np.uint64(c | 1) for c in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9)]
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_SHIFT32 = np.uint64(32)
#: distinct tokens seen in this process -> their 64-bit hash as 8 little-endian
#: bytes, so a text's hashes join into one buffer numpy reads (bounded below)
_TOKEN_HASHES: dict[str, bytes] = {}
_TOKEN_CACHE_MAX = 200_000


def _token_hash(token: str) -> bytes:
    h = _TOKEN_HASHES.get(token)
    if h is None:
        if len(_TOKEN_HASHES) >= _TOKEN_CACHE_MAX:
            _TOKEN_HASHES.clear()
        h = hashlib.blake2b(token.encode("utf-8"), digest_size=8, salt=b"aggr-tok").digest()
        _TOKEN_HASHES[token] = h
    return h


def _token_hashes(toks: Sequence[str]) -> Any:
    """The 64-bit hash of each token, in order (a numpy array)."""
    # Cache lookups by map() run in C; a None (a token new to this process)
    # makes join fail, and only then is each token looked at in Python.
    found = list(map(_TOKEN_HASHES.get, toks))
    try:
        raw = b"".join(found)  # type: ignore[arg-type]
    except TypeError:
        raw = b"".join([h or _token_hash(t) for t, h in zip(toks, found, strict=True)])
    return np.frombuffer(raw, dtype="<u8")


def _shingle_hashes(toks: Sequence[str], size: int = SHINGLE_SIZE) -> Any:
    """A 64-bit hash of each `size`-token shingle of `toks`, in order (a
    numpy array); a text shorter than size is one shingle. Empty for no tokens.

    A shingle's hash is its token hashes, each times its position's odd
    constant (so "a b c" and "c b a" differ), summed mod 2**64.
    """
    hashes = _token_hashes(toks)
    if 0 < len(hashes) < size:  # one shingle of every token; pad with a fixed value
        hashes = np.concatenate([hashes, np.zeros(size - len(hashes), dtype=np.uint64)])
    n = max(len(hashes) - size + 1, 0)
    shingle = hashes[:n] * _COMBINE[0]
    for i in range(1, size):
        shingle += hashes[i : i + n] * _COMBINE[i]
    return shingle


def minhash(toks: Sequence[str], size: int = SHINGLE_SIZE) -> tuple[int, ...]:
    """The MinHash signature (SIGNATURE_SIZE 32-bit values) of the set of
    `size`-token shingles of `toks` (a text shorter than size is one shingle)."""
    if not toks:
        return ()
    shingle = _shingle_hashes(toks, size)
    # Mixed down to 32 bits, then every permutation at once; a repeated
    # shingle gives a repeated value, which min ignores.
    shingle ^= shingle >> _SHIFT32
    shingle = (shingle * _MIX) >> _SHIFT32
    permuted = _PERM_A * shingle
    permuted += _PERM_B
    # The top 32 bits of the least value are the least of the top 32 bits
    # (a shift keeps order): shift 32 minima rather than the whole matrix.
    return tuple((permuted.min(axis=1) >> _SHIFT32).tolist())


def band_keys(signature: Sequence[int]) -> list[int]:
    """One 63-bit LSH bucket key per band; entries sharing a key are candidates."""
    if len(signature) < BANDS * ROWS:
        return []
    # Band b hashes struct.pack(f"<BB{ROWS}I", SIGNATURE_VERSION, b, *its values):
    # the signature is packed once and cut into bands.
    packed = struct.pack(f"<{BANDS * ROWS}I", *signature[: BANDS * ROWS])
    width = 4 * ROWS
    return [
        int.from_bytes(
            hashlib.blake2b(prefix + packed[b * width : (b + 1) * width], digest_size=8).digest(),
            "little",
        )
        & _MASK63
        for b, prefix in enumerate(_BAND_PREFIXES)
    ]


_BAND_PREFIXES = [struct.pack("<BB", SIGNATURE_VERSION, b) for b in range(BANDS)]


def lsh_keys(text: str, min_weight: float) -> list[int]:
    """The LSH bucket keys of an entry's text; none for text too short to judge."""
    toks = article_tokens(text)
    if weight(toks) < min_weight:
        return []
    return band_keys(minhash(toks))


def text_identity(text: str) -> tuple[str, LshIndex]:
    """text_fingerprint(text) and the text's LSH index, tokenized once."""
    toks, w = _article_tokens_and_weight(text)
    return _fingerprint(toks, w), LshIndex(SIGNATURE_VERSION, w, tuple(band_keys(minhash(toks))))


def index_use(version: int | None, weight: float | None, min_weight: float) -> bool | None:
    """The rule that says which keys index an entry, from its stored index's
    version and weight: True, all of its stored keys; False, none (too light
    a text to match by similarity); None, the index is stale or missing (the
    keys must be computed from the text). The one statement of the rule: the
    store asks it with the two values it reads, index_keys below with an
    LshIndex in hand."""
    if version != SIGNATURE_VERSION or weight is None:
        return None
    return weight >= min_weight


def index_keys(index: LshIndex | None, min_weight: float) -> list[int] | None:
    """lsh_keys(text, min_weight) from a stored index; None if it is stale or missing."""
    if index is None:
        return None
    use = index_use(index.version, index.weight, min_weight)
    if use is None:
        return None
    return list(index.keys) if use else []


class Prepared:
    """An entry's text, tokenized and shingled once for repeated comparisons.

    The shingle set is kept as a sorted array of distinct 64-bit shingle
    hashes (8 bytes a shingle, not a string each), so a dedupe round can
    hold thousands of them; the tokens are recomputed on the rare occasion
    they are needed (a pair that passed the Jaccard test).
    """

    __slots__ = ("_text", "shingle_hashes", "weight")

    def __init__(self, text: str) -> None:
        toks = article_tokens(text)
        self._text = text
        self.weight = weight(toks)
        self.shingle_hashes = np.unique(_shingle_hashes(toks))

    @property
    def tokens(self) -> list[str]:
        return article_tokens(self._text)


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
    sa, sb = a.shingle_hashes, b.shingle_hashes
    smaller, larger = sorted((len(sa), len(sb)))
    if smaller < threshold * larger:  # Jaccard cannot reach threshold: skip the work
        return None
    inter = len(np.intersect1d(sa, sb, assume_unique=True))
    union = len(sa) + len(sb) - inter
    score = inter / union if union else 0.0  # as jaccard() on the shingle sets
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
