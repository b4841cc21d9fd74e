"""`QueryIntentTask`: the distribution over item categories a query (and user) leads to.

A softmax head on the query tower's hidden state, trained on the rows with a
click: the label is the category of the clicked item (`category_column`, one
of the schema's item categorical columns), so over many clicks the head
learns `P(category | query, user)`, the category mix of what that query's
users click. Rows without a click, with a withheld (NaN) click or with a
category outside the vocabulary carry no label and add nothing to the loss.
Loss: softmax cross-entropy, the weighted mean over the labelled rows
(`sample_weight` in the labels; 1 without); metrics: top-1
and top-3 accuracy on them. The query tower learns from it too (it is an
auxiliary signal of what a query is about); serving exports it as the
`query_intent` signature, and `retrieve_by_intent` filters or boosts the
retrieval by it.

Example:

```python
task = QueryIntentTask(["shoes", "toys", "books"], category_column="item_category")
out = task(tf.ones([2, 8]))   # {"intent_logits", "intent_probabilities"}: [2, 3]
labels = {"click": tf.constant([1.0, 0.0])}
task.compute_loss(labels, out, {"item_category": tf.constant(["toys", "books"])})   # log(3): only row 0 counts
```
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfrec.losses.weighting import weighted_mean
from tfrec.tasks.task import Task, masked_label, sample_weight


@keras.saving.register_keras_serializable(package="tfrec")
class QueryIntentTask(Task):
    """Softmax over the categories of `vocabulary` from the query tower's hidden state.

    Args:
        vocabulary: the categories (strings), the head's classes in order.
        category_column: the item feature holding each row's category.
        name: the task name (loss `"<name>_loss"`, outputs `intent_*`).
    """

    label = "click"

    def __init__(self, vocabulary, category_column, name="intent", **kwargs):
        super().__init__(name=name, **kwargs)
        self.vocabulary = [str(v) for v in vocabulary]
        if not self.vocabulary:
            raise ValueError("QueryIntentTask: the vocabulary is empty (no category to predict)")
        if len(set(self.vocabulary)) != len(self.vocabulary):
            raise ValueError("QueryIntentTask: the vocabulary has duplicate categories")
        self.category_column = str(category_column)
        # Index 0: a category outside the vocabulary (no label); the classes are 1..C.
        self.lookup = keras.layers.StringLookup(
            vocabulary=self.vocabulary, num_oov_indices=1, mask_token=None, name="intent_lookup"
        )
        self.head = keras.layers.Dense(len(self.vocabulary), name="intent_logits", dtype="float32")
        self.top1 = keras.metrics.SparseTopKCategoricalAccuracy(k=1, name=f"{self.name}_top1_accuracy")
        self.top3 = keras.metrics.SparseTopKCategoricalAccuracy(k=3, name=f"{self.name}_top3_accuracy")

    @property
    def num_categories(self) -> int:
        return len(self.vocabulary)

    def build(self, hidden_shape):
        self.head.build(tuple(hidden_shape))
        self.built = True

    def call(self, query_hidden, training=False):
        logits = self.head(tf.cast(query_hidden, "float32"))
        return {"intent_logits": logits, "intent_probabilities": tf.nn.softmax(logits, axis=-1)}

    def category_index(self, features):
        """The class of each row's category `[batch]` (int32), -1 where it is outside the vocabulary."""
        return tf.cast(self.lookup(tf.reshape(features[self.category_column], [-1])), "int32") - 1

    def _labelled(self, labels, outputs, features=None):
        """`(class, weight)`: each row's class (0 if unlabelled), and 1.0 where it has a click and a known category."""
        index = outputs["intent_label"] if "intent_label" in outputs else self.category_index(features)
        click, known = masked_label(labels, "click")
        labelled = tf.logical_and(tf.logical_and(known, click > 0), index >= 0)
        return tf.maximum(index, 0), tf.cast(labelled, "float32")

    def compute_loss(self, labels, outputs, features):
        target, weight = self._labelled(labels, outputs, features)
        per_row = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=target, logits=outputs["intent_logits"])
        return weighted_mean(per_row, sample_weight(labels), mask=weight)

    def update_metrics(self, labels, outputs):
        if "intent_label" not in outputs:  # the model's task inputs carry the rows' classes
            return
        target, weight = self._labelled(labels, outputs)
        for metric in (self.top1, self.top3):
            metric.update_state(target, outputs["intent_probabilities"], sample_weight=weight)

    def get_config(self):
        config = super().get_config()
        config.update({"vocabulary": list(self.vocabulary), "category_column": self.category_column})
        return config
