"""In-graph top-k indexes over a catalog's embeddings, servable on stock TF Serving.

`retrieve` signatures score a query against the catalog embedded at export
time. Two indexes, both made only of core TensorFlow ops:

* `BruteForceIndex`: one matmul over every item, then `top_k`. Exact; its cost
  grows with the catalog (a scan of `N x d` float32 per query, bound by memory
  bandwidth on a CPU).
* `PartitionedIndex`: an inverted-file index. Items are clustered by spherical
  k-means at export time and stored grouped by cluster; a query scores the
  centroids, then scores exactly only the items of its `probe` nearest
  clusters (gathered with `RaggedRange` + `GatherV2`). About `probe / clusters`
  of the catalog is scanned; recall against brute force depends on how
  clustered the embeddings are (`benchmarks/retrieve_scaling.py` measures it).

Both take excluded item positions (`-1` for none) and return the top `width`
scores and item positions per query, `-inf` where fewer items qualify.

Example:

```python
index = make_index("partitioned", item_embeddings, clusters=1024, probe=32)
index.attach(holder)                       # variables tracked by the export
values, positions = index.top_k(query, excluded_positions, width=10)
```
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

INDEX_KINDS = ("brute_force", "partitioned")


def make_index(kind, embeddings, **options):
    """`BruteForceIndex` or `PartitionedIndex` over `[N, d]` float32 embeddings."""
    if kind == "brute_force":
        if options:
            raise ValueError(f"retrieval index 'brute_force' takes no options, got {sorted(options)}")
        return BruteForceIndex(embeddings)
    if kind == "partitioned":
        return PartitionedIndex(embeddings, **options)
    raise ValueError(f"retrieval_index must be one of {INDEX_KINDS}, got {kind!r}")


def _mask_excluded(scores, item_positions, excluded):
    """-inf where a candidate's item is excluded. scores/item_positions `[B, T]`, excluded `[B, E]`."""
    hit = tf.reduce_any(tf.equal(item_positions[:, :, None], excluded[:, None, :]), axis=-1)
    return tf.where(hit, tf.constant(-np.inf, scores.dtype), scores)


def mask_excluded_rows(scores, excluded):
    """`scores` `[B, N]` with `-inf` at the excluded catalog rows (`excluded` `[B, E]`, -1 = none).

    Exclusions are written into the scores (a scatter of -inf), so the cost is
    O(B x E), not a [B, E, N] one-hot.
    """
    excluded = tf.cast(excluded, tf.int64)
    where = tf.where(excluded >= 0)  # [M, 2]: (row, column of excluded)
    cells = tf.stack([where[:, 0], tf.gather_nd(excluded, where)], axis=1)
    return tf.tensor_scatter_nd_update(scores, cells, tf.fill([tf.shape(cells)[0]], tf.constant(-np.inf, scores.dtype)))


class BruteForceIndex:
    """Exact scan: `query @ embeddings.T`, then `top_k`."""

    kind = "brute_force"

    def __init__(self, embeddings):
        self.embeddings = np.asarray(embeddings, np.float32)
        self.num_items = len(self.embeddings)

    def attach(self, holder):
        holder.catalog_embeddings = tf.Variable(self.embeddings, trainable=False, name="catalog_embeddings")
        self._holder = holder
        return self

    def nbytes(self):
        return int(self.embeddings.nbytes)

    def describe(self):
        return {"kind": self.kind, "items": self.num_items}

    def top_k(self, query, excluded, width):
        scores = tf.matmul(query, self._holder.catalog_embeddings, transpose_b=True)  # [B, N]
        top = tf.math.top_k(mask_excluded_rows(scores, excluded), k=width)
        return top.values, top.indices


def spherical_kmeans(embeddings, clusters, iterations=10, seed=0, chunk=65536):
    """Cluster centroids (unit norm) and each row's cluster, by cosine k-means."""
    x = tf.constant(np.asarray(embeddings, np.float32))
    n = int(x.shape[0])
    rng = np.random.default_rng(seed)
    centroids = tf.gather(x, rng.choice(n, clusters, replace=False))
    assign = None
    for _ in range(iterations):
        parts = [
            tf.argmax(tf.matmul(x[i : i + chunk], centroids, transpose_b=True), axis=1, output_type=tf.int32)
            for i in range(0, n, chunk)
        ]
        assign = tf.concat(parts, axis=0)
        sums = tf.math.unsorted_segment_sum(x, assign, clusters)
        counts = tf.math.unsorted_segment_sum(tf.ones([n]), assign, clusters)
        # Empty clusters restart at a random item.
        empty = counts == 0
        restart = tf.gather(x, rng.choice(n, clusters))
        sums = tf.where(empty[:, None], restart, sums)
        centroids = tf.math.l2_normalize(sums, axis=1)
    parts = [
        tf.argmax(tf.matmul(x[i : i + chunk], centroids, transpose_b=True), axis=1, output_type=tf.int32)
        for i in range(0, n, chunk)
    ]
    assign = tf.concat(parts, axis=0)
    return centroids.numpy(), assign.numpy()


class PartitionedIndex:
    """Inverted-file index: k-means partitions, exact scoring inside the `probe` nearest.

    Args:
        embeddings: `[N, d]` item embeddings (unit norm, as the item tower's).
        clusters: number of partitions (default about `sqrt(N)`, at most N).
        probe: partitions scanned per query (default `max(1, clusters // 16)`).
        iterations, seed: k-means settings.
    """

    kind = "partitioned"

    def __init__(self, embeddings, clusters=None, probe=None, iterations=10, seed=0):
        embeddings = np.asarray(embeddings, np.float32)
        n = len(embeddings)
        clusters = int(clusters or max(1, round(math.sqrt(n))))
        clusters = max(1, min(clusters, n))
        probe = int(probe or max(1, clusters // 16))
        if not 1 <= probe <= clusters:
            raise ValueError(f"partitioned index: probe must be in [1, clusters={clusters}], got {probe}")
        self.num_items, self.clusters, self.probe = n, clusters, probe
        centroids, assign = spherical_kmeans(embeddings, clusters, iterations=iterations, seed=seed)
        order = np.argsort(assign, kind="stable").astype(np.int64)
        counts = np.bincount(assign, minlength=clusters)
        self.centroids = centroids.astype(np.float32)
        self.order = order  # position in cluster order -> item position
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.sorted_embeddings = embeddings[order]
        self.largest_cluster = int(counts.max())

    def attach(self, holder):
        holder.index_centroids = tf.Variable(self.centroids, trainable=False, name="index_centroids")
        holder.index_order = tf.Variable(self.order, trainable=False, name="index_order")
        holder.index_offsets = tf.Variable(self.offsets, trainable=False, name="index_offsets")
        holder.catalog_embeddings = tf.Variable(
            self.sorted_embeddings, trainable=False, name="catalog_embeddings_by_partition"
        )
        self._holder = holder
        return self

    def nbytes(self):
        return int(self.centroids.nbytes + self.order.nbytes + self.offsets.nbytes + self.sorted_embeddings.nbytes)

    def describe(self):
        return {
            "kind": self.kind,
            "items": self.num_items,
            "clusters": self.clusters,
            "probe": self.probe,
            "largest_cluster": self.largest_cluster,
        }

    def top_k(self, query, excluded, width, probe=None):
        h = self._holder
        probe = probe or self.probe
        batch = tf.shape(query)[0]
        nearest = tf.math.top_k(tf.matmul(query, h.index_centroids, transpose_b=True), k=probe).indices  # [B, P]
        starts = tf.gather(h.index_offsets, nearest)
        limits = tf.gather(h.index_offsets, nearest + 1)
        # Positions (in cluster order) of every candidate, one ragged row per query.
        per_cluster = tf.ragged.range(tf.reshape(starts, [-1]), tf.reshape(limits, [-1]))
        row_lengths = tf.reduce_sum(tf.reshape(per_cluster.row_lengths(), [batch, probe]), axis=1)
        flat = per_cluster.flat_values
        row_of = tf.repeat(tf.range(batch), row_lengths)
        candidates = tf.gather(h.catalog_embeddings, flat)  # [T, d]
        scores = tf.reduce_sum(candidates * tf.gather(query, row_of), axis=1)
        items = tf.gather(h.index_order, flat)
        scores = tf.RaggedTensor.from_row_lengths(scores, row_lengths).to_tensor(
            default_value=tf.constant(-np.inf, scores.dtype)
        )
        items = tf.RaggedTensor.from_row_lengths(items, row_lengths).to_tensor(default_value=-1)
        # At least `width` columns, so top_k has enough (padding scores -inf).
        pad = tf.maximum(width - tf.shape(scores)[1], 0)
        scores = tf.pad(scores, [[0, 0], [0, pad]], constant_values=-np.inf)
        items = tf.pad(items, [[0, 0], [0, pad]], constant_values=-1)
        scores = _mask_excluded(scores, items, tf.cast(excluded, items.dtype))
        top = tf.math.top_k(scores, k=width)
        return top.values, tf.gather(items, top.indices, batch_dims=1)
