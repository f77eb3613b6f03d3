"""Dedupe: index changed entries and re-cluster their neighbourhood, or the whole store."""

from __future__ import annotations

from datetime import datetime

from aggregator import dedupe, fingerprint, settings
from aggregator.config import Config
from aggregator.errors import AggregatorError
from aggregator.store import Store


def dedupe_changed(config: Config, store: Store) -> int:
    """Incremental dedupe: index the entries new, changed or gone since the
    last time, and re-judge only their neighbourhood (entries sharing a key
    or an LSH bucket with them, and the clusters those belong to).

    Returns how many entries were newly linked to a canonical entry.
    """
    return dedupe_incremental(store, settings.dedupe_settings(config))


#: dirty entries judged per round: bounds memory when a first ingest brings many
DEDUPE_BATCH = 5_000
#: a dirty set at least this share of the stored entries is judged in one
#: whole-store pass (dedupe_full: one grouped query finds every shared
#: bucket) rather than by looking up its keys and their buckets, which costs
#: more past this point (a first ingest of 17,306 entries: 3.8 s by lookups)
WHOLE_STORE_SHARE = 0.25
#: ... and of at least this many entries: smaller rounds stay incremental,
#: cheap either way, and leave every other cluster as it is
WHOLE_STORE_MIN = 1_000


def dedupe_incremental(
    store: Store,
    settings: dedupe.DedupeSettings,
    whole_store_share: float = WHOLE_STORE_SHARE,
    whole_store_min: int = WHOLE_STORE_MIN,
) -> int:
    """dedupe_changed with explicit settings (tests, benchmark).

    A dirty set of at least `whole_store_min` entries and `whole_store_share`
    of the store is judged by a full re-cluster instead, which gives the same
    clusters (tests: the corpus both ways) for less work.
    """
    dirty_all = store.dedupe_dirty_ids()
    if dirty_all and len(dirty_all) >= max(
        whole_store_min, whole_store_share * store.entry_count()
    ):
        return _dedupe_whole_store(store, settings, dirty_all)
    linked = 0
    for start in range(0, len(dirty_all), DEDUPE_BATCH):
        linked += _dedupe_batch(store, settings, dirty_all[start : start + DEDUPE_BATCH])
    return linked


def _dedupe_batch(store: Store, settings: dedupe.DedupeSettings, dirty: list[int]) -> int:
    # Earlier batches are indexed already, so a later entry still finds them.
    live = store.dedupe_candidates(dirty)
    keys, texts = _index_keys(store, [c.id for c in live], settings)
    store.replace_lsh_keys(dirty, keys)
    lsh = {k for ks in keys.values() for k in ks}
    scope = store.dedupe_neighbours(live, lsh, settings.max_group) | set(dirty)
    scope = store.cluster_mates(scope)
    linked = _recluster_scope(store, scope, settings, texts)
    store.clear_dedupe_dirty(dirty)
    return linked


def _index_keys(
    store: Store, ids: list[int], settings: dedupe.DedupeSettings
) -> tuple[dict[int, list[int]], dict[int, str]]:
    """The LSH keys of `ids`: from the index stored with each entry (computed
    by normalize in the parsing workers), else from its text. Also returns
    the texts it had to read."""
    keys: dict[int, list[int]] = {}
    missing = []
    for i, index in store.entry_lsh(ids).items():
        found = fingerprint.index_keys(index, settings.near_min_words)
        if found is None:
            missing.append(i)
        else:
            keys[i] = found
    texts = store.entry_texts(missing)
    keys.update((i, fingerprint.lsh_keys(t, settings.near_min_words)) for i, t in texts.items())
    return keys, texts


def dedupe_all(config: Config, store: Store) -> int:
    """Full re-cluster of every visible entry (`aggregator dupes --recluster`).

    Indexes any entries not yet indexed first. Never all pairs: only
    entries sharing a key or an LSH bucket are compared.
    """
    return dedupe_full(store, settings.dedupe_settings(config))


def dedupe_full(store: Store, settings: dedupe.DedupeSettings) -> int:
    """dedupe_all with explicit settings (tests, benchmark)."""
    return _dedupe_whole_store(store, settings, store.dedupe_dirty_ids())


def _dedupe_whole_store(store: Store, settings: dedupe.DedupeSettings, dirty: list[int]) -> int:
    candidates = store.dedupe_candidates()
    if dirty:
        _index_all(store, dirty, settings)
    buckets = store.lsh_buckets(None, settings.max_group)
    pairs = dedupe.propose(candidates, buckets, settings)
    texts = store.entry_texts(dedupe.texts_needed(pairs))
    edges = dedupe.judge(pairs, {c.id: c for c in candidates}, texts, settings)
    links = dedupe.build_clusters({c.id: c for c in candidates}, edges, store.dupe_splits())
    # Every entry linked now or before: the rest stay canonical as they are.
    linked = store.apply_dupe_links(store.linked_ids(), links)
    store.clear_dedupe_dirty(dirty)
    return linked


def _index_all(store: Store, dirty: list[int], settings: dedupe.DedupeSettings) -> None:
    """Index the LSH keys of `dirty` for a whole-store pass: the database
    copies the keys normalize stored with each entry (none read out), the rest
    are computed from their text."""
    stale = store.index_stored_lsh(dirty, fingerprint.SIGNATURE_VERSION, settings.near_min_words)
    if stale:
        texts = store.entry_texts(stale)
        keys = {i: fingerprint.lsh_keys(t, settings.near_min_words) for i, t in texts.items()}
        store.replace_lsh_keys(stale, keys)


def split_duplicate(config: Config, store: Store, entry_id: int, now: datetime) -> list[int]:
    """Undo a wrong merge: `entry_id` leaves its cluster and stays apart from
    every other member in later ingests. Returns the ids it was parted from."""
    mates = sorted(store.cluster_mates([entry_id]) - {entry_id})
    if not store.dedupe_candidates([entry_id]):
        raise AggregatorError(f"no visible entry with id {entry_id} (see: aggregator dupes)")
    if not mates:
        raise AggregatorError(f"entry {entry_id} is not linked to any other entry")
    store.add_dupe_splits(entry_id, mates, now)
    _recluster_scope(store, {entry_id, *mates}, settings.dedupe_settings(config), {})
    return mates


def _recluster_scope(
    store: Store, scope: set[int], settings: dedupe.DedupeSettings, texts: dict[int, str]
) -> int:
    """Cluster the entries of `scope` among themselves and record the links."""
    candidates = store.dedupe_candidates(scope)
    by_id = {c.id: c for c in candidates}
    pairs = dedupe.propose(candidates, store.lsh_buckets(scope, settings.max_group), settings)
    need = dedupe.texts_needed(pairs) - texts.keys()
    texts = {**texts, **store.entry_texts(need)}
    edges = dedupe.judge(pairs, by_id, texts, settings)
    links = dedupe.build_clusters(by_id, edges, store.dupe_splits(scope))
    return store.apply_dupe_links(scope, links)
