"""In-batch sampled softmax for two-tower retrieval, built on keras-rs layers.

Every other item in the batch is a negative for a query; under a
multi-replica `tf.distribute` strategy the items of every replica's slice are
gathered, so each query sees the global batch's negatives. The layer applies, in
order: temperature, removal of accidental hits (the same item elsewhere in the
batch is not a negative), the logQ correction
for popular items being over-sampled as negatives (keras-rs
`SamplingProbabilityCorrection`, Yi et al., RecSys 2019), and optionally keeps
only the hardest negatives (keras-rs `HardNegativeMining`).

The loss is the weighted mean (`tfrec.losses.weighting.weighted_mean`) of
each query row's softmax cross-entropy over the positive rows (`weights`),
each weighted by its `sample_weight`. Weighting is per query row: a row of
weight 0 adds nothing to the loss and gets no gradient from it, but its item
stays a negative for the other queries of the batch.

Example:

```python
loss_layer = InBatchSoftmaxRetrievalLoss(temperature=0.05)
emb = tf.math.l2_normalize(tf.random.normal([4, 8]), axis=-1)
loss = loss_layer(emb, emb, item_index=tf.constant([0, 1, 2, 2]), sampling_probability=tf.fill([4], 0.25))
```
"""

import keras
import keras_rs
import tensorflow as tf

from tfrec.losses.weighting import weighted_mean


def _gather_across_replicas(items, item_index, sampling_probability):
    """Candidates from every replica's batch, so negatives span the global batch.

    Returns the gathered tensors and the offset of this replica's rows among
    them. Outside a multi-replica strategy this is the identity (offset 0).
    Per-replica batches must have equal sizes (use `drop_remainder=True`).
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return items, item_index, sampling_probability, 0
    offset = tf.cast(ctx.replica_id_in_sync_group, tf.int32) * tf.shape(items)[0]
    items = ctx.all_gather(items, axis=0)
    if item_index is not None:
        item_index = ctx.all_gather(item_index, axis=0)
    if sampling_probability is not None:
        sampling_probability = ctx.all_gather(sampling_probability, axis=0)
    return items, item_index, sampling_probability, offset


@keras.saving.register_keras_serializable(package="tfrec")
class InBatchSoftmaxRetrievalLoss(keras.layers.Layer):
    """Weighted mean in-batch softmax cross-entropy of each positive pair.

    Args:
        temperature: logits are `dot(query, item) / temperature`.
        remove_accidental_hits: mask duplicates of the positive item.
        logq_correction: subtract `log(sampling probability)` of candidates.
        num_hard_negatives: if set, keep only this many hardest negatives.
    """

    def __init__(
        self, temperature=0.05, remove_accidental_hits=True, logq_correction=True, num_hard_negatives=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.temperature = float(temperature)
        self.remove_accidental_hits = bool(remove_accidental_hits)
        self.logq_correction = bool(logq_correction)
        self.num_hard_negatives = int(num_hard_negatives) if num_hard_negatives else None
        self.correction = keras_rs.layers.SamplingProbabilityCorrection()
        self.hard_negatives = (
            keras_rs.layers.HardNegativeMining(self.num_hard_negatives) if self.num_hard_negatives else None
        )

    def logits_and_labels(self, query, items, item_index=None, sampling_probability=None):
        local_ids = None if item_index is None else tf.cast(item_index, "int64")
        items, item_index, sampling_probability, offset = _gather_across_replicas(
            items, local_ids, sampling_probability
        )
        logits = tf.matmul(query, items, transpose_b=True) / self.temperature
        labels = tf.one_hot(tf.range(tf.shape(query)[0]) + offset, tf.shape(items)[0], dtype=logits.dtype)
        if self.remove_accidental_hits and item_index is not None:
            # Written here, not keras-rs `RemoveAccidentalHits`: in keras-rs
            # 0.4 that layer adds ~1e-40 to the duplicates' logits, a no-op
            # (keras-team/keras-rs#206, open). Tested in tests/test_losses.py.
            ids = tf.cast(item_index, "int64")
            duplicate = tf.cast(tf.equal(local_ids[:, None], ids[None, :]), logits.dtype) - labels
            logits = tf.where(duplicate > 0, tf.constant(-1e9, logits.dtype), logits)
        if self.logq_correction and sampling_probability is not None:
            prob = tf.broadcast_to(tf.cast(sampling_probability, logits.dtype)[None, :], tf.shape(logits))
            logits = self.correction(logits, prob)
        if self.hard_negatives is not None:
            # keras-rs clamps the count to the number of candidates itself.
            logits, labels = self.hard_negatives(logits, labels)
        return logits, labels

    def call(self, query, items, item_index=None, sampling_probability=None, weights=None, sample_weight=None):
        """Scalar loss; `weights`: 1 on the positive rows, 0 elsewhere (None: all); `sample_weight`: per row."""
        logits, labels = self.logits_and_labels(query, items, item_index, sampling_probability)
        per_row = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        return weighted_mean(per_row, sample_weight, mask=weights)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "temperature": self.temperature,
                "remove_accidental_hits": self.remove_accidental_hits,
                "logq_correction": self.logq_correction,
                "num_hard_negatives": self.num_hard_negatives,
            }
        )
        return config
