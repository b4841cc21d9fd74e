"""`TwoTowerModel`: BERT query/user tower, item tower, retrieval, CTR, value and relevance heads.

The query tower reads the query text (a keras-hub BERT), the user's attributes,
id and recent items; the item tower reads the title (the same BERT), id,
attributes and price. Both end in L2-normalised `embedding_dim` vectors whose
dot product is the retrieval score. On top:

* retrieval: in-batch softmax over the batch's items (`InBatchSoftmaxRetrievalLoss`);
* CTR: DCN-v2 crosses (keras-rs `FeatureCross`) of both towers' hidden
  representations and their product, a multi-task block, and a sigmoid giving
  P(click | seen). Position bias is factored out as in PAL (Guo et al.,
  RecSys 2019): P(click) = P(seen | position) * P(click | seen), with
  P(seen | position) learnt from logged positions. Scoring without a position
  scores position 1;
* relevance (if the schema has graded labels): regression onto the label range;
* user value: zero-inflated lognormal (or MSE / Huber) on the user profile.

Tasks are trained jointly with `ModelConfig.loss_weights`. The model works
with `fit`, `evaluate`, `predict` and `.keras` save/load. Build one with
`tfrec.models.build_model`, which computes vocabularies and statistics from
the training table.

Example:

```python
model = build_model(schema, ModelConfig(), train_df)
model.compile(optimizer="adam")
model.fit(dataset_from_dataframe(train_df, schema, batch_size=512), epochs=2)
scores = model.predict(features)   # dict: ctr, user_value, score, embeddings...
```
"""

from __future__ import annotations

import keras
import keras_rs
import numpy as np
import tensorflow as tf

from tfrec.layers.multi_task_block import MultiTaskBlock
from tfrec.losses.retrieval import InBatchSoftmaxRetrievalLoss
from tfrec.losses.ziln import ziln_expected_value, ziln_loss_per_example, ziln_probability
from tfrec.models.config import ModelConfig
from tfrec.schema import FeatureSchema


def _mlp(units, name, dropout=0.0):
    layers = []
    for i, u in enumerate(units):
        layers.append(keras.layers.Dense(u, activation="relu", name=f"{name}_{i}"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    return keras.Sequential(layers, name=name)


@keras.saving.register_keras_serializable(package="tfrec")
class TwoTowerModel(keras.Model):
    """Two towers and multi-task heads; see the module docstring.

    Args:
        schema: `FeatureSchema` (or its dict).
        config: `ModelConfig` (or its dict).
        user_encoder: a `UserFeatureEncoder`.
        item_encoder: an `ItemFeatureEncoder`.
        text_encoder: a `TextEncoder`, or None for an id/attribute-only model.
        item_text_encoder: a light title encoder (`BagOfWordsEncoder`) used
            instead of the BERT for item titles, or None.
        item_sampling_probability: per item-vocabulary row (OOV buckets
            first) the share of training positives, for the logQ correction.
    """

    def __init__(self, schema, config, user_encoder, item_encoder, text_encoder=None,
                 item_sampling_probability=None, item_text_encoder=None, **kwargs):
        # Inputs stay as given (float32 prices, counts, positions) under a
        # mixed-precision policy; each sublayer casts what it computes on.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.schema = schema if isinstance(schema, FeatureSchema) else FeatureSchema.from_dict(schema)
        self.config = config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config)
        cfg = self.config
        self.user_encoder = user_encoder
        self.item_encoder = item_encoder
        self.text_encoder = text_encoder
        self.item_text_enabled = bool(text_encoder is not None and self.schema.item_text
                                      and cfg.text.item_text == "shared")
        self.query_text_enabled = bool(text_encoder is not None and self.schema.query_text)
        self.item_text_encoder = item_text_encoder if self.schema.item_text else None
        self.query_mlp = _mlp(cfg.tower_units, "query_tower", cfg.dropout)
        self.query_projection = keras.layers.Dense(cfg.embedding_dim, name="query_embedding", dtype="float32")
        self.item_mlp = _mlp(cfg.tower_units, "item_tower", cfg.dropout)
        self.item_projection = keras.layers.Dense(cfg.embedding_dim, name="item_embedding", dtype="float32")
        self.crosses = [keras_rs.layers.FeatureCross(name=f"cross_{i}") for i in range(cfg.cross_layers)]
        self.tasks = ["ctr"] + (["relevance"] if self.schema.relevance_label else [])
        self.multitask = MultiTaskBlock(cfg.multitask, num_tasks=len(self.tasks), num_experts=cfg.num_experts,
                                        units=cfg.expert_units, dropout=cfg.dropout, name="multitask")
        self.ctr_head = keras.layers.Dense(1, name="ctr_logit", dtype="float32")
        self.relevance_head = keras.layers.Dense(1, name="relevance", dtype="float32") if "relevance" in self.tasks else None
        # Logit of P(seen | position); starts at 0 (P = 0.5) for every
        # position, where the sigmoid is not saturated and the curve can move.
        self.position_bias = keras.layers.Embedding(cfg.max_position + 1, 1,
                                                    embeddings_initializer="zeros",
                                                    name="position_bias", dtype="float32")
        self.value_mlp = _mlp([64], "value_tower", cfg.dropout)
        self.value_head = keras.layers.Dense(3 if cfg.value_loss == "ziln" else 1, name="value_logits",
                                             dtype="float32")
        self.retrieval_loss = InBatchSoftmaxRetrievalLoss(
            temperature=cfg.temperature, remove_accidental_hits=cfg.remove_accidental_hits,
            logq_correction=cfg.logq_correction, num_hard_negatives=cfg.num_hard_negatives,
            name="retrieval_loss",
        )
        n_rows = item_encoder.id_embedding.input_dim if item_encoder.id_embedding is not None else 1
        prob = np.full(n_rows, 1.0 / n_rows) if item_sampling_probability is None \
            else np.asarray(item_sampling_probability, dtype="float32")
        self.item_sampling_probability = self.add_weight(
            shape=(n_rows,), initializer=keras.initializers.Constant(prob), trainable=False,
            name="item_sampling_probability",
        )
        # A schema without item features (e.g. customers -> future value) has
        # no item tower input: retrieval is off and the item embedding is a
        # constant placeholder.
        self.has_item_features = bool(self.schema.item_feature_names)
        labels = {"ctr": self.schema.click_label, "value": self.schema.value_label,
                  "relevance": self.schema.relevance_label, "retrieval": self.has_item_features}
        self.active_tasks = [t for t in ("retrieval", "ctr", "value", "relevance")
                             if labels[t] and cfg.loss_weights[t] > 0]
        self._trackers = {name: keras.metrics.Mean(name=f"{name}_loss") for name in self.active_tasks}
        self.ctr_auc = keras.metrics.AUC(name="ctr_auc") if self.schema.click_label else None
        self.value_rmse = keras.metrics.RootMeanSquaredError(name="value_rmse") if self.schema.value_label else None
        self.relevance_rmse = keras.metrics.RootMeanSquaredError(name="relevance_rmse") \
            if self.schema.relevance_label else None

    # ---------------------------------------------------------------- build
    def dummy_features(self, batch_size=2):
        """A batch of placeholder features in the schema's input format."""
        from tfrec.data.pipeline import feature_spec

        out = {}
        for name, spec in feature_spec(self.schema).items():
            shape = [batch_size] + list(spec.shape[1:])
            out[name] = tf.fill(shape, "") if spec.dtype == tf.string else tf.ones(shape, spec.dtype)
        return out

    def build(self, input_shape=None):
        if self.built:
            return
        # Creating every weight needs one forward pass over a placeholder batch.
        self.call(self.dummy_features(), training=False)
        self.built = True

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Under a tf.distribute strategy, Keras 3.15's TF trainer reduces the
        # first distributed batch with MEAN to get a sample batch, which fails
        # on string features (the AddN of strings; the same code path as
        # keras-team/keras#20585). The model builds itself from placeholder
        # features instead; then only the optimizer needs building.
        if getattr(self, "_distribute_strategy", None) is None:
            return
        with self.distribute_strategy.scope():
            self.build()
            self._symbolic_build(data_batch=(self.dummy_features(),))

    def get_build_config(self):
        # Non-empty, or Keras skips build_from_config and loads weights into
        # an unbuilt model.
        return {"dummy_batch": True}

    def build_from_config(self, config):
        self.build()

    # --------------------------------------------------------------- towers
    def _concat(self, parts):
        # Under a mixed-precision policy the parts arrive in float32 and
        # bfloat16/float16; the towers compute in the policy's compute dtype
        # while heads, embeddings and losses stay float32.
        return tf.concat([tf.cast(p, self.compute_dtype) for p in parts], axis=-1)

    def _text(self, texts, training):
        return self.text_encoder(tf.reshape(texts, [-1]), training=training)

    def encode_query(self, features, training=False, return_hidden=False):
        """Normalised query/user embedding `[batch, embedding_dim]`."""
        profile, id_vector = self.user_encoder(features, training=training)
        parts = [profile, id_vector]
        if self.query_text_enabled:
            parts.insert(0, self._text(features[self.schema.query_text], training))
        hidden = self.query_mlp(self._concat(parts), training=training)
        embedding = tf.math.l2_normalize(self.query_projection(hidden), axis=-1)
        return (embedding, hidden, profile) if return_hidden else embedding

    def encode_item(self, features, training=False, return_hidden=False):
        """Normalised item embedding `[batch, embedding_dim]`."""
        if not self.has_item_features:
            batch = tf.shape(next(iter(features.values())))[0]
            parts = [tf.zeros([batch, 1])]
        else:
            parts = [self.item_encoder(features, training=training)]
        if self.item_text_enabled:
            parts.insert(0, self._text(features[self.schema.item_text], training))
        elif self.item_text_encoder is not None:
            parts.insert(0, self.item_text_encoder(features[self.schema.item_text]))
        hidden = self.item_mlp(self._concat(parts), training=training)
        embedding = tf.math.l2_normalize(self.item_projection(hidden), axis=-1)
        return (embedding, hidden) if return_hidden else embedding

    def _value_outputs(self, profile, training):
        if self.config.value_detach_profile:
            profile = tf.stop_gradient(profile)
        raw = self.value_head(self.value_mlp(profile, training=training))
        if self.config.value_loss == "ziln":
            return {"value_logits": raw, "user_value": ziln_expected_value(raw),
                    "value_probability": ziln_probability(raw)}
        return {"value_logits": raw, "user_value": tf.reshape(raw, [-1])}

    def predict_user_value(self, features, training=False):
        """Value outputs from user features alone (no query or item needed)."""
        profile, _ = self.user_encoder(features, training=training)
        return self._value_outputs(profile, training)

    # ----------------------------------------------------------------- call
    def call(self, features, training=False):
        q_emb, q_hidden, profile = self.encode_query(features, training, return_hidden=True)
        i_emb, i_hidden = self.encode_item(features, training, return_hidden=True)
        score = tf.reduce_sum(q_emb * i_emb, axis=-1)
        x0 = self._concat([q_hidden, i_hidden, q_emb * i_emb])
        x = x0
        for cross in self.crosses:
            x = cross(x0, x)
        task_inputs = self.multitask(x, training=training)
        # The two-tower score enters the head directly: MLPs learn dot
        # products poorly (Rendle et al., RecSys 2020), and the retrieval task
        # already trains it on clicks.
        scaled_score = score[:, None] / self.config.temperature
        click_if_seen = tf.reshape(self.ctr_head(tf.concat([tf.cast(task_inputs[0], "float32"), scaled_score], -1)),
                                   [-1])
        seen = tf.reshape(self.position_bias(self._position(features)), [-1])
        # log P(click) and log P(no click) of P = sigmoid(seen) * sigmoid(click_if_seen).
        log_p = tf.math.log_sigmoid(click_if_seen) + tf.math.log_sigmoid(seen)
        log_not_p = tf.math.log(-tf.math.expm1(tf.minimum(log_p, -1e-7)))
        outputs = {
            "query_embedding": q_emb,
            "item_embedding": i_emb,
            "score": score,
            "ctr_logit": log_p - log_not_p,
            "ctr": tf.exp(log_p),
        }
        if self.relevance_head is not None:
            low, high = self.schema.relevance_range
            raw = tf.reshape(self.relevance_head(task_inputs[1]), [-1])
            outputs["relevance"] = low + (high - low) * tf.sigmoid(raw)
        outputs.update(self._value_outputs(profile, training))
        return outputs

    def _position(self, features):
        """Logged position if given, else 1 (serving scores the top slot)."""
        name = self.schema.position
        any_column = next(iter(features.values()))
        if name and name in features:
            position = tf.reshape(tf.cast(features[name], "float32"), [-1])
            position = tf.where(tf.math.is_nan(position), 1.0, position)
            return tf.cast(tf.clip_by_value(position, 1, self.config.max_position), "int32")
        return tf.ones([tf.shape(any_column)[0]], "int32")

    # ----------------------------------------------------------------- loss
    def _retrieval_weights(self, y):
        if "click" in y:
            return tf.cast(y["click"], "float32")
        if "relevance" in y:
            low, high = self.schema.relevance_range
            return tf.cast(y["relevance"] >= low + 0.5 * (high - low), "float32")
        return None

    def task_losses(self, x, y, y_pred):
        """Unweighted loss of each active task, as a dict of scalars."""
        y = y or {}
        weights = self.config.loss_weights
        losses = {}
        if weights["retrieval"] > 0 and self.has_item_features:
            item_index = self.item_encoder.item_index(x) if self.item_encoder.id_embedding is not None else None
            prob = tf.gather(self.item_sampling_probability, item_index) if item_index is not None else None
            losses["retrieval"] = self.retrieval_loss(
                y_pred["query_embedding"], y_pred["item_embedding"], item_index, prob,
                self._retrieval_weights(y),
            )
        if "click" in y and weights["ctr"] > 0:
            losses["ctr"] = tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
                labels=tf.cast(y["click"], "float32"), logits=y_pred["ctr_logit"]))
        if "value" in y and weights["value"] > 0:
            label = tf.cast(y["value"], "float32")
            known = tf.logical_not(tf.math.is_nan(label))  # NaN = label withheld
            safe = tf.where(known, label, 0.0)
            if self.config.value_loss == "ziln":
                per_row = ziln_loss_per_example(safe, y_pred["value_logits"])
            elif self.config.value_loss == "mse":
                per_row = tf.square(y_pred["user_value"] - safe)
            else:
                per_row = keras.losses.huber(safe[:, None], y_pred["user_value"][:, None], delta=1.0)
            mask = tf.cast(known, "float32")
            losses["value"] = tf.reduce_sum(per_row * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
        if "relevance" in y and "relevance" in y_pred and weights["relevance"] > 0:
            losses["relevance"] = tf.reduce_mean(tf.square(y_pred["relevance"] - tf.cast(y["relevance"], "float32")))
        return losses

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        losses = self.task_losses(x, y, y_pred)
        total = tf.add_n([self.config.loss_weights[k] * v for k, v in losses.items()]) if losses else 0.0
        for name, value in losses.items():
            if name in self._trackers:
                self._trackers[name].update_state(value)
        if self.losses:
            total += tf.add_n(self.losses)
        # Keras sums gradients over replicas and unscales the reported loss:
        # like its built-in losses, return this replica's share of the mean.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return total / replicas if replicas > 1 else total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        y = y or {}
        if "click" in y and self.ctr_auc is not None:
            self.ctr_auc.update_state(y["click"], y_pred["ctr"])
        if "value" in y and self.value_rmse is not None:
            label = tf.cast(y["value"], "float32")
            known = tf.logical_not(tf.math.is_nan(label))
            self.value_rmse.update_state(tf.boolean_mask(label, known), tf.boolean_mask(y_pred["user_value"], known))
        if "relevance" in y and self.relevance_rmse is not None:
            self.relevance_rmse.update_state(y["relevance"], y_pred["relevance"])
        return self.get_metrics_result()

    # -------------------------------------------------------------- config
    def get_config(self):
        return {
            "name": self.name,
            "schema": self.schema.to_dict(),
            "config": self.config.to_dict(),
            "user_encoder": keras.saving.serialize_keras_object(self.user_encoder),
            "item_encoder": keras.saving.serialize_keras_object(self.item_encoder),
            "text_encoder": keras.saving.serialize_keras_object(self.text_encoder) if self.text_encoder else None,
            "item_text_encoder": keras.saving.serialize_keras_object(self.item_text_encoder)
            if self.item_text_encoder else None,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("user_encoder", "item_encoder", "text_encoder", "item_text_encoder"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
