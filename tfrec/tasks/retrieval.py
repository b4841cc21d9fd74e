"""`RetrievalTask`: in-batch softmax retrieval of the positive item for each query.

Positives are the rows with a click (or, without clicks, a graded relevance
in the upper half of its range: `is_relevant`); the other items of the batch
(gathered across replicas) are the negatives, corrected for their sampling
probability (logQ) and with in-batch duplicates of the positive masked.
Each positive query row's loss is weighted by its `sample_weight` (in the
labels; 1 without); a row of weight 0 adds nothing, while its item stays a
negative for the other queries.

Example:

```python
task = RetrievalTask(item_sampling_probability=np.full(10, 0.1), temperature=0.05)
loss = task.compute_loss({"click": clicks}, {"query_embedding": q, "item_embedding": i,
                                             "item_index": ids}, features=None)
```
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfrec.losses.retrieval import InBatchSoftmaxRetrievalLoss
from tfrec.schema import is_relevant
from tfrec.tasks.task import Task, sample_weight


@keras.saving.register_keras_serializable(package="tfrec")
class RetrievalTask(Task):
    """In-batch softmax over the batch's items.

    Args:
        item_sampling_probability: per item-vocabulary row (OOV buckets
            first) the share of training positives, for the logQ correction;
            an int `n` makes a placeholder of `n` rows (filled by loading
            weights); None when items have no id.
        temperature, remove_accidental_hits, logq_correction,
            num_hard_negatives: `InBatchSoftmaxRetrievalLoss` arguments.
        relevance_range: `(low, high)` of graded labels, used when there are
            no clicks.
    """

    def __init__(
        self,
        item_sampling_probability=None,
        temperature=0.05,
        remove_accidental_hits=True,
        logq_correction=True,
        num_hard_negatives=None,
        relevance_range=(0.0, 1.0),
        name="retrieval",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.temperature = float(temperature)
        self.remove_accidental_hits = bool(remove_accidental_hits)
        self.logq_correction = bool(logq_correction)
        self.num_hard_negatives = int(num_hard_negatives) if num_hard_negatives else None
        self.relevance_range = tuple(float(v) for v in relevance_range)
        self.loss_fn = InBatchSoftmaxRetrievalLoss(
            temperature=self.temperature,
            remove_accidental_hits=self.remove_accidental_hits,
            logq_correction=self.logq_correction,
            num_hard_negatives=self.num_hard_negatives,
            name="retrieval_loss",
        )
        self.item_sampling_probability = None
        if item_sampling_probability is not None:
            prob = np.asarray(item_sampling_probability, dtype="float32")
            if prob.ndim == 0:  # a row count: the values come with the weights
                prob = np.full(int(prob), 1.0 / max(int(prob), 1), dtype="float32")
            self.item_sampling_probability = self.add_weight(
                shape=prob.shape,
                initializer=keras.initializers.Constant(prob),
                trainable=False,
                name="item_sampling_probability",
            )
        # Its only state is created here: the task is never called, only its loss.
        self.built = True

    def positive_weights(self, labels):
        """1 for the rows that are positives, 0 otherwise; None = every row is one."""
        if labels and "click" in labels:
            return tf.cast(labels["click"], "float32")
        if labels and "relevance" in labels:
            return tf.cast(is_relevant(tf.cast(labels["relevance"], "float32"), self.relevance_range), "float32")
        return None

    def compute_loss(self, labels, outputs, features):
        item_index = outputs.get("item_index")
        prob = None
        if item_index is not None and self.item_sampling_probability is not None:
            prob = tf.gather(self.item_sampling_probability, item_index)
        return self.loss_fn(
            outputs["query_embedding"],
            outputs["item_embedding"],
            item_index,
            prob,
            self.positive_weights(labels),
            sample_weight=sample_weight(labels),
        )

    def get_config(self):
        config = super().get_config()
        prob = self.item_sampling_probability
        config.update(
            {
                # The row count only: the probabilities are a (non-trainable) weight.
                "item_sampling_probability": None if prob is None else int(prob.shape[0]),
                "temperature": self.temperature,
                "remove_accidental_hits": self.remove_accidental_hits,
                "logq_correction": self.logq_correction,
                "num_hard_negatives": self.num_hard_negatives,
                "relevance_range": list(self.relevance_range),
            }
        )
        return config
