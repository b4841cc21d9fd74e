"""`TwoTowerModel`: a query tower, an item tower and the tasks the data has.

The `QueryTower` reads the query text (a keras-hub BERT), the user's
attributes, id and recent items; the `ItemTower` reads the title (the same
BERT, shared, or a bag of words), id, attributes and price. Both end in
L2-normalised `embedding_dim` vectors whose dot product is the retrieval
score. The tasks (`tfrec.tasks`) on top are exactly those the schema has
labels for (`build_model` picks them):

* `RetrievalTask`: in-batch softmax over the batch's items;
* `CtrTask` (with clicks): DCN-v2 crosses (`CrossNetwork`) of both towers'
  hidden representations and their product, a `MultiTaskBlock`, and P(click)
  with the position bias factored out (PAL);
* `RelevanceTask` (with graded labels): regression onto the label range,
  from its own output of the multi-task block;
* `UserValueTask` (with value labels): ZILN (or MSE / Huber) on the user profile;
* `QueryIntentTask` (with clicks and an item category): the distribution over
  categories a query leads to (`intent_probabilities`), a softmax on the query
  tower's hidden state trained on the clicked items' categories.

Where the schema has query and item text, the ranking tasks also read
`LexicalMatch` features of the pair (term overlap, prefix matches, phrase,
BM25 with the catalog's IDF; `ModelConfig.lexical_features`), in the cross
network's input beside the towers' states. The retrieval score stays the
towers' dot product.

Tasks are trained jointly with `ModelConfig.loss_weights` through one loss
path (`TaskModel.weighted_losses`). The model works with `fit`, `evaluate`,
`predict` and `.keras` save/load. Build one with `tfrec.models.build_model`,
which computes vocabularies and statistics from the training table.

Example:

```python
model = build_model(schema, ModelConfig(), train_df)
model.compile(optimizer="adam")
model.fit(dataset_from_dataframe(train_df, schema, batch_size=512).take(2), epochs=1, verbose=0)
scores = model(features)   # dict: ctr, user_value, score, embeddings...
```
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tfrec.layers.serialization import deserialize_sublayers
from tfrec.models.task_model import TaskModel
from tfrec.tasks import CtrTask, QueryIntentTask, RelevanceTask, RetrievalTask, UserValueTask
from tfrec.towers import ItemTower
from tfrec.towers.tower import concat_in_compute_dtype


@keras.saving.register_keras_serializable(package="tfrec")
class TwoTowerModel(TaskModel):
    """Two towers and the tasks of the data; see the module docstring.

    Args:
        schema: `FeatureSchema` (or its dict).
        config: `ModelConfig` (or its dict).
        query_tower: a `QueryTower`.
        item_tower: an `ItemTower`.
        tasks: the `Task`s, at most one of each kind.
        cross_network: a `CrossNetwork` feeding the ranking tasks (CTR,
            relevance), with `multitask`, a `MultiTaskBlock` with one output
            per ranking task; both None when there is no ranking task.
        lexical_match: a `LexicalMatch` of the schema's query and item text,
            read by the ranking tasks; None: no lexical features.
    """

    def __init__(
        self,
        schema,
        config,
        query_tower,
        item_tower,
        tasks=(),
        cross_network=None,
        multitask=None,
        lexical_match=None,
        **kwargs,
    ):
        super().__init__(schema, config, **kwargs)
        self.query_tower = query_tower
        self.item_tower = item_tower
        self.tasks = list(tasks)
        by_type = {type(t): t for t in self.tasks}
        if len(by_type) != len(self.tasks):
            raise ValueError(f"TwoTowerModel: one task of each kind, got {[type(t).__name__ for t in self.tasks]}")
        self.retrieval_task = by_type.get(RetrievalTask)
        self.ctr_task = by_type.get(CtrTask)
        self.relevance_task = by_type.get(RelevanceTask)
        self.value_task = by_type.get(UserValueTask)
        self.intent_task = by_type.get(QueryIntentTask)
        self.ranking_tasks = [t for t in (self.ctr_task, self.relevance_task) if t is not None]
        if self.ranking_tasks and (cross_network is None or multitask is None):
            raise ValueError("TwoTowerModel: ranking tasks (CTR, relevance) need cross_network and multitask")
        if multitask is not None and multitask.num_tasks != len(self.ranking_tasks):
            raise ValueError(
                f"TwoTowerModel: multitask has {multitask.num_tasks} outputs for "
                f"{len(self.ranking_tasks)} ranking task(s)"
            )
        self.cross_network = cross_network if self.ranking_tasks else None
        self.multitask = multitask if self.ranking_tasks else None
        if lexical_match is not None and not (self.schema.query_text and self.schema.item_text):
            raise ValueError("TwoTowerModel: lexical_match needs a schema with query_text and item_text")
        self.lexical_match = lexical_match if self.ranking_tasks else None

    def components(self):
        parts = [self.query_tower, self.item_tower, self.cross_network, self.multitask, self.lexical_match]
        parts += self.tasks
        return [p for p in parts if p is not None]

    @property
    def text_encoder(self):
        """The BERT `TextEncoder` (shared by both towers), or None."""
        return self.query_tower.text_encoder or self.item_tower.text_encoder

    # --------------------------------------------------------------- towers
    def encode_query(self, features, training=False):
        """Normalised query/user embedding `[batch, embedding_dim]`."""
        return self.query_tower(features, training=training)["embedding"]

    def encode_item(self, features, training=False):
        """Normalised item embedding `[batch, embedding_dim]`."""
        return self.item_tower(features, training=training)["embedding"]

    def predict_user_value(self, features, training=False):
        """Value outputs from user features alone (no query or item needed)."""
        if self.value_task is None:
            raise ValueError("this model has no user-value task (the training data had no value label)")
        profile, _ = self.query_tower.user_encoder(features, training=training)
        return self.value_task(profile, training=training)

    def predict_intent(self, features, training=False):
        """`intent_probabilities` `[batch, categories]` (of `intent_task.vocabulary`) from user features alone."""
        if self.intent_task is None:
            raise ValueError("this model has no query-intent task (the training data had no click or item category)")
        hidden = self.query_tower(features, training=training)["hidden"]
        return {"intent_probabilities": self.intent_task(hidden, training=training)["intent_probabilities"]}

    # ----------------------------------------------------------------- call
    def call(self, features, training=False):
        query = self.query_tower(features, training=training)
        item = self.item_tower(features, training=training)
        score = tf.reduce_sum(query["embedding"] * item["embedding"], axis=-1)
        outputs = {"query_embedding": query["embedding"], "item_embedding": item["embedding"], "score": score}
        outputs.update(self.ranking_outputs(query, item, score, features, training=training))
        if self.value_task is not None:
            outputs.update(self.value_task(query["profile"], training=training))
        if self.intent_task is not None:
            outputs.update(self.intent_task(query["hidden"], training=training))
        return outputs

    def ranking_outputs(self, query, item, score, features, training=False):
        """The ranking tasks' outputs (`ctr`, `relevance`, ...) of rows from the towers' outputs; {} without them."""
        outputs = {}
        if not self.ranking_tasks:
            return outputs
        parts = [query["hidden"], item["hidden"], query["embedding"] * item["embedding"]]
        lexical = self.lexical_features(features)
        if lexical is not None:
            parts.append(lexical)
        x0 = concat_in_compute_dtype(parts, self.compute_dtype)
        task_inputs = self.multitask(self.cross_network(x0), training=training)
        for task, task_input in zip(self.ranking_tasks, task_inputs):
            if task is self.ctr_task:
                outputs.update(task(task_input, score, features))
            else:
                outputs.update(task(task_input, score))
        return outputs

    def query_outputs(self, features):
        """The query tower's `embedding` and `hidden` (what `score_candidates` reads) in inference mode."""
        out = self.query_tower(features, training=False)
        return {"embedding": out["embedding"], "hidden": out["hidden"]}

    def item_outputs(self, features):
        """The item tower's `embedding` and `hidden` in inference mode."""
        return dict(self.item_tower(features, training=False))

    def score_candidates(self, query, items, candidates, query_text=None, item_text=None):
        """Ranking outputs of each query's candidate items, reusing tower outputs computed once.

        Args:
            query: `query_outputs` of `B` queries.
            items: `item_outputs` of a catalog of `M` items.
            candidates: int `[B, N]` catalog rows to score for each query.
            query_text: `[B]` query texts, item_text: `[M]` item texts (for the
                lexical features; needed where the model has them).

        Returns:
            dict of `[B, N]`: `score` (two-tower) and the ranking tasks'
            outputs (`ctr` at position 1, `relevance`).
        """
        candidates = tf.convert_to_tensor(candidates)
        b, n = tf.shape(candidates)[0], tf.shape(candidates)[1]
        flat = tf.reshape(candidates, [-1])
        pair_query = {k: tf.repeat(query[k], n, axis=0) for k in ("embedding", "hidden")}
        pair_item = {k: tf.gather(items[k], flat) for k in ("embedding", "hidden")}
        score = tf.reduce_sum(pair_query["embedding"] * pair_item["embedding"], axis=-1)
        features = {}
        if self.lexical_match is not None:
            if query_text is None or item_text is None:
                raise ValueError("score_candidates: this model reads lexical features; pass query_text and item_text")
            features[self.schema.query_text] = tf.repeat(tf.reshape(query_text, [-1]), n)
            features[self.schema.item_text] = tf.gather(tf.reshape(item_text, [-1]), flat)
        outputs = {"score": score, **self.ranking_outputs(pair_query, pair_item, score, features)}
        return {k: tf.reshape(v, [b, n]) for k, v in outputs.items()}

    def lexical_features(self, features):
        """`LexicalMatch` features of the query and item text `[batch, f]`, or None (no lexical features)."""
        if self.lexical_match is None:
            return None
        return self.lexical_match(features[self.schema.query_text], features[self.schema.item_text])

    def task_inputs(self, x, y_pred):
        index = self.item_tower.item_index(x)
        out = y_pred if index is None else {**y_pred, "item_index": index}
        if self.intent_task is not None and self.intent_task.category_column in x:
            out = {**out, "intent_label": self.intent_task.category_index(x)}
        return out

    # -------------------------------------------------------------- config
    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        shared = (
            self.query_tower.text_encoder is not None and self.query_tower.text_encoder is self.item_tower.text_encoder
        )
        item_tower = serialize(self.item_tower)
        if shared:  # stored once, with the query tower
            item_tower["config"]["text_encoder"] = None
        config = super().get_config()
        config.update(
            {
                "query_tower": serialize(self.query_tower),
                "item_tower": item_tower,
                "share_text_encoder": shared,
                "tasks": [serialize(t) for t in self.tasks],
                "cross_network": serialize(self.cross_network) if self.cross_network is not None else None,
                "multitask": serialize(self.multitask) if self.multitask is not None else None,
                "lexical_match": serialize(self.lexical_match) if self.lexical_match is not None else None,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "query_tower" not in config:
            raise ValueError(
                "this model was saved by a tfrec version before towers and tasks (it has no 'query_tower'); "
                "train it again with this version"
            )
        deserialize = keras.saving.deserialize_keras_object
        query_tower = deserialize(config.pop("query_tower"))
        item_config = config.pop("item_tower")
        if config.pop("share_text_encoder", False):
            item_config = {**item_config, "config": {**item_config["config"], "text_encoder": query_tower.text_encoder}}
        item_tower = ItemTower.from_config(item_config["config"])
        tasks = [deserialize(t) for t in config.pop("tasks", [])]
        config = deserialize_sublayers(config, ("cross_network", "multitask", "lexical_match"))
        return cls(query_tower=query_tower, item_tower=item_tower, tasks=tasks, **config)
