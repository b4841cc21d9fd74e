"""Export a `TwoTowerModel` as a versioned SavedModel for TensorFlow Serving.

`export_model` writes `<base_dir>/<model_name>/<version>/` in TF Serving's
layout with these signatures (inputs named by the schema's columns, batch
dimension first; strings for text, ids and categoricals, float32 for numerics,
a `[batch, n]` string matrix for the user history, padded with ""):

| signature | inputs | outputs |
| --- | --- | --- |
| `serving_default` = `score` | user and item features | `score`; `ctr`, `relevance`, `user_value` where trained |
| `encode_query` (search: the schema has query text) | user features, query text included | `query_embedding` |
| `encode_user` (no query text: interactions) | user features | `user_embedding` |
| `encode_item` | item features | `item_embedding` |
| `retrieve` | user features, `k` int32 `[B]`, `exclude_item_ids` string `[B, n]` | `item_ids` `[B, K]`, `scores` |
| `rank` (with a CTR task) | as `retrieve` | `item_ids`, `scores` (the fused objective), `ctr` `[B, K]` |
| `rank_weighted` (with a CTR task) | as `rank`, plus the four `*_weight` float32 `[B]` | as `rank` |
| `query_intent` (intent task) | user features | `categories` string `[B, n]`, `probabilities` (top n = min(5, C)) |
| `retrieve_by_intent` (intent task) | as `retrieve`, `intent_boost`, `intent_filter` | as `retrieve`, `categories` |
| `user_value` (with a value task) | user features | `user_value`, `value_probability` (ZILN) |

A `UserValueModel` (a table of customers, no items) exports `user_value` and
`serving_default` = `user_value` only.

`rank` retrieves `model.fusion.candidates` items (a scan of the catalog by
the objective with the retrieval logit in place of the CTR), scores
each (query, item) pair with the CTR head (at position 1; relevance and the
user's value where trained) and returns the top `K` by the fused objective
`ObjectiveFusion` (`tfrec.layers.objective_fusion`) with the config's weights;
`rank_weighted` takes the weights (`click_weight`, `relevance_weight`,
`price_weight`, `value_weight`) per request.

`query_intent` returns the `QueryIntentTask`'s most likely categories of the
query. `retrieve_by_intent` scans the whole catalog (exact, whatever the
`retrieval_index`) by `score + intent_boost * log P(item's category | query)`
(`intent_boost` float32 `[B]`; the score is the towers' cosine, so a boost
about the retrieval temperature, 0.05, weighs the intent as the retrieval
softmax would) and keeps only items whose category is among the row's
`intent_filter` (string `[B, n]`; a row of `""` filters nothing); it also
returns each item's category. Boost 0 and no filter retrieve as `retrieve` does.

`retrieve` scores the catalog embedded at export time in the graph (brute
force, or a partitioned k-means index with `retrieval_index="partitioned"`),
drops excluded ids (send `[[""]]` to exclude nothing) and returns the
top `K = min(max(k), max_k)`; rows asking for fewer than K get `""` ids and
`-inf` scores in the extra slots. All preprocessing (tokenisation, lookups,
normalisation) is in the graph. Only core TensorFlow ops and the TF Text ops
that stock TF Serving bundles are used (`tfrec.export.ops` checks).

The version is written in a hidden sibling folder and renamed into place, so a
server polling `base_dir` never sees a half-written version; older versions
beyond `keep_versions` are removed. `assets.extra/` holds
`tf_serving_warmup_requests` (real PredictionLog records for each signature)
and `tfrec_manifest.json` (schema, model config, metrics, package versions).

Example:

```python
result = export_model(model, "models", catalog=items_df, examples=test_df.head(8))
print(result.path, result.size_bytes, result.load_seconds)
```
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
import uuid
from importlib import metadata

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from tfrec.data.pipeline import feature_spec, fit_history
from tfrec.export.ops import version_numbers
from tfrec.export.retrieval_index import BruteForceIndex, make_index, mask_excluded_rows
from tfrec.layers.objective_fusion import WEIGHTS as FUSION_WEIGHTS
from tfrec.layers.objective_fusion import ObjectiveFusion
from tfrec.models.inference import encode_items, features_of, tower_outputs

WARMUP_FILE = "tf_serving_warmup_requests"
MANIFEST_FILE = "tfrec_manifest.json"


@dataclasses.dataclass
class ExportResult:
    """Where an export went and what it cost."""

    path: str
    version: int
    size_bytes: int
    export_seconds: float
    load_seconds: float
    signatures: list[str]


class ServingCatalog(keras.layers.Layer):
    """The catalog `retrieve` serves: item ids, an id -> row table and the index's variables.

    Example:

    ```python
    catalog = ServingCatalog(["a", "b"])
    catalog.catalog_index.lookup(tf.constant(["b", "zz"]))   # [1, -1]
    ```
    """

    def __init__(self, catalog_ids, **kwargs):
        super().__init__(**kwargs)
        catalog_ids = [str(i) for i in catalog_ids]
        self.catalog_ids = tf.Variable(tf.constant(catalog_ids, tf.string), trainable=False, name="catalog_ids")
        self.catalog_index = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(catalog_ids), tf.range(len(catalog_ids), dtype=tf.int64)),
            default_value=-1,
        )
        self.built = True


def serving_specs(schema) -> dict[str, dict[str, tf.TensorSpec]]:
    """Input specs per signature group: `user`, `item`."""
    specs = feature_spec(schema)
    if schema.user_history:
        specs[schema.user_history] = tf.TensorSpec([None, None], tf.string)
    named = {k: tf.TensorSpec(v.shape, v.dtype, name=k) for k, v in specs.items()}
    return {
        "user": {c: named[c] for c in schema.user_feature_names},
        "item": {c: named[c] for c in schema.item_feature_names},
    }


def _package_versions():
    out = {}
    for pkg in (
        "tfrec",
        "tensorflow",
        "keras",
        "keras-hub",
        "keras-nlp",
        "keras-rs",
        "tensorflow-text",
        "tensorflow-serving-api",
        "numpy",
        "pandas",
    ):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def has_items(model) -> bool:
    """Whether `model` has an item tower (a `UserValueModel` has none)."""
    return getattr(model, "item_tower", None) is not None


def user_signature(schema) -> tuple[str, str]:
    """The name and output of the signature encoding the query/user tower's input.

    `encode_query` -> `query_embedding` where the schema has query text
    (search), else `encode_user` -> `user_embedding` (interactions: a user id
    and/or recent items).
    """
    return ("encode_query", "query_embedding") if schema.query_text else ("encode_user", "user_embedding")


def signature_names(model) -> list[str]:
    """The signatures an export of `model` has.

    Two towers: `serving_default` (= `score`), `score`, `encode_query` (or
    `encode_user` without query text), `encode_item`, `retrieve`, and
    `user_value` where the model has a value task; a user-value model:
    `serving_default` (= `user_value`) and `user_value`.
    """
    if not has_items(model):
        return ["serving_default", "user_value"]
    names = ["serving_default", "score", user_signature(model.schema)[0], "encode_item", "retrieve"]
    if getattr(model, "ctr_task", None) is not None:
        names += ["rank", "rank_weighted"]
    if getattr(model, "intent_task", None) is not None:
        names += ["query_intent", "retrieve_by_intent"]
    return names + (["user_value"] if getattr(model, "value_task", None) is not None else [])


def _default_signature(model) -> str:
    return "score" if has_items(model) else "user_value"


def build_signatures(model, catalog_ids, catalog_embeddings, max_k, holder, index=None):
    """The tf.functions and input signatures of every endpoint (but `serving_default`).

    `holder` is the `ServingCatalog` of `catalog_ids`; `index` (a
    `tfrec.export.retrieval_index` index over `catalog_embeddings`) serves
    `retrieve`; default: brute force.
    """
    schema = model.schema
    specs = serving_specs(schema)
    user_spec, item_spec = specs["user"], specs["item"]
    value_keys = ("user_value", "value_probability")
    if not has_items(model):
        return {"user_value": (_user_value_endpoint(model, schema, value_keys), user_spec)}
    index = (index or BruteForceIndex(catalog_embeddings)).attach(holder)

    def score(features):
        out = model(fit_history(features, schema), training=False)
        keys = ("ctr", "score", "relevance") + value_keys
        return {k: out[k] for k in keys if k in out}

    encode_user_name, encode_user_output = user_signature(schema)

    def encode_user(features):
        return {encode_user_output: model.encode_query(fit_history(features, schema))}

    def encode_item(features):
        return {"item_embedding": model.encode_item(features)}

    user_value = _user_value_endpoint(model, schema, value_keys)

    num_items = len(catalog_ids)

    def retrieve(features):
        features = dict(features)
        k = tf.cast(tf.reshape(features.pop("k"), [-1]), tf.int32)
        exclude = features.pop("exclude_item_ids")
        query = model.encode_query(fit_history(features, schema))
        # Exclusions are applied before top-k (so a row still gets k items)
        # and K varies per request: keras-rs BruteForceRetrieval fixes k at
        # construction and has no exclusions, hence the scan is written here.
        excluded_index = holder.catalog_index.lookup(exclude)  # [B, E], -1 if unknown
        width = tf.minimum(tf.minimum(tf.reduce_max(k), max_k), num_items)
        width = tf.maximum(width, 1)
        values, positions = index.top_k(query, excluded_index, width)
        ids = tf.gather(holder.catalog_ids, tf.maximum(positions, 0))  # -1: no item (masked below)
        keep = tf.range(width)[None, :] < k[:, None]
        finite = tf.math.is_finite(values)
        keep = tf.logical_and(keep, finite)
        return {
            "item_ids": tf.where(keep, ids, ""),
            "scores": tf.where(keep, values, tf.constant(-np.inf, values.dtype)),
        }

    rank = _rank_endpoint(model, holder, max_k) if "rank" in signature_names(model) else None

    both = {**user_spec, **item_spec}
    retrieve_spec = {
        **user_spec,
        "k": tf.TensorSpec([None], tf.int32, name="k"),
        "exclude_item_ids": tf.TensorSpec([None, None], tf.string, name="exclude_item_ids"),
    }
    endpoints = {
        "score": (score, both),
        encode_user_name: (encode_user, user_spec),
        "encode_item": (encode_item, item_spec),
        "retrieve": (retrieve, retrieve_spec),
        "user_value": (user_value, user_spec),
    }
    if rank is not None:
        weight_spec = {name: tf.TensorSpec([None], tf.float32, name=name) for name in FUSION_WEIGHTS}
        endpoints["rank"] = (rank, retrieve_spec)
        endpoints["rank_weighted"] = (rank, {**retrieve_spec, **weight_spec})
    if "query_intent" in signature_names(model):
        endpoints.update(intent_endpoints(model, holder, catalog_embeddings, max_k, user_spec, retrieve_spec))
    return {name: endpoints[name] for name in signature_names(model) if name in endpoints}


def attach_ranking_catalog(model, holder, catalog: pd.DataFrame) -> None:
    """Stores what `rank` reads of the catalog on `holder`: item tower outputs, titles and prices, in catalog order."""
    schema = model.schema
    outputs = tower_outputs(model, catalog, "item")
    holder.ranking_item_embedding = tf.Variable(outputs["embedding"].astype(np.float32), trainable=False)
    holder.ranking_item_hidden = tf.Variable(outputs["hidden"].astype(np.float32), trainable=False)
    titles = catalog[schema.item_text].astype(str).tolist() if schema.item_text else [""] * len(catalog)
    holder.ranking_item_text = tf.Variable(tf.constant(titles, tf.string), trainable=False)
    prices = catalog[schema.item_price].to_numpy(np.float32) if schema.item_price else np.ones(len(catalog), np.float32)
    holder.ranking_item_price = tf.Variable(prices, trainable=False)


def _rank_endpoint(model, holder, max_k):
    """`rank`: retrieve `fusion.candidates` items, score them with the CTR (and relevance, value) heads, order by
    the fused objective (`ObjectiveFusion`, weights from the config or the request's `*_weight` inputs).

    Candidates come from a scan of the whole catalog (not the retrieval index) by the objective with the
    retrieval logit `score / temperature` in place of `log(ctr)`, so the price weight shapes them too.
    """
    schema = model.schema
    fusion_config = model.config.fusion
    relevance_max = float(schema.relevance_range[1]) if schema.relevance_range else 1.0
    fusion = ObjectiveFusion(
        **{name: getattr(fusion_config, name) for name in FUSION_WEIGHTS}, relevance_max=relevance_max
    )
    num_items = int(holder.catalog_ids.shape[0])
    width = max(1, min(int(fusion_config.candidates), num_items))
    temperature = float(model.config.temperature)
    has_value = getattr(model, "value_task", None) is not None

    def rank(features):
        features = dict(features)
        k = tf.cast(tf.reshape(features.pop("k"), [-1]), tf.int32)
        exclude = features.pop("exclude_item_ids")
        overrides = {name: features.pop(name) for name in FUSION_WEIGHTS if name in features}
        user = fit_history(features, schema)
        query = model.query_outputs(user)
        excluded_index = holder.catalog_index.lookup(exclude)
        user_value = model.predict_user_value(user)["user_value"] if has_value else None
        # Candidates: the whole catalog by the objective with the retrieval logit in place of log(ctr).
        logits = tf.matmul(query["embedding"], holder.ranking_item_embedding, transpose_b=True) / temperature
        coarse = {"log_ctr": logits, "price": tf.broadcast_to(holder.ranking_item_price[None, :], tf.shape(logits))}
        if user_value is not None:
            coarse["user_value"] = user_value
        coarse_scores = mask_excluded_rows(fusion(coarse, weights=overrides), excluded_index)
        retrieved = tf.math.top_k(coarse_scores, k=width)
        valid = tf.math.is_finite(retrieved.values)
        rows = retrieved.indices
        items = {"embedding": holder.ranking_item_embedding, "hidden": holder.ranking_item_hidden}
        query_text = user.get(schema.query_text) if schema.query_text else None
        pairs = model.score_candidates(query, items, rows, query_text, holder.ranking_item_text)
        signals = {"ctr": pairs["ctr"], "price": tf.gather(holder.ranking_item_price, rows)}
        if "relevance" in pairs:
            signals["relevance"] = pairs["relevance"]
        if user_value is not None:
            signals["user_value"] = user_value
        fused = tf.where(valid, fusion(signals, weights=overrides), tf.constant(-np.inf, tf.float32))
        shown = tf.minimum(tf.minimum(tf.reduce_max(k), max_k), width)
        top = tf.math.top_k(fused, k=tf.maximum(shown, 1))
        chosen = tf.gather(rows, top.indices, batch_dims=1)
        keep = tf.logical_and(tf.range(tf.shape(top.indices)[1])[None, :] < k[:, None], tf.math.is_finite(top.values))
        return {
            "item_ids": tf.where(keep, tf.gather(holder.catalog_ids, chosen), ""),
            "scores": tf.where(keep, top.values, tf.constant(-np.inf, tf.float32)),
            "ctr": tf.where(keep, tf.gather(signals["ctr"], top.indices, batch_dims=1), 0.0),
        }

    return rank


#: Most categories the `query_intent` signature returns per query.
INTENT_TOP_CATEGORIES = 5


def attach_intent_catalog(model, holder, catalog: pd.DataFrame) -> None:
    """Stores what `query_intent` and `retrieve_by_intent` read on `holder`, in catalog order.

    The intent head's categories; each catalog item's category as text, as
    its group among the catalog's categories (what `intent_filter` matches)
    and as the head's class (-1 where the head lacks it).
    """
    task = model.intent_task
    categories = catalog[task.category_column].fillna("").astype(str).to_numpy()
    groups, group_of_item = np.unique(categories, return_inverse=True)
    class_of = {c: j for j, c in enumerate(task.vocabulary)}
    item_class = np.array([class_of.get(c, -1) for c in categories], np.int32)
    holder.intent_categories = tf.Variable(tf.constant(task.vocabulary, tf.string), trainable=False)
    holder.intent_item_category = tf.Variable(tf.constant(categories.tolist(), tf.string), trainable=False)
    holder.intent_groups = tf.Variable(tf.constant(groups.tolist(), tf.string), trainable=False)
    holder.intent_item_group = tf.Variable(group_of_item.astype(np.int32), trainable=False)
    holder.intent_item_class = tf.Variable(item_class, trainable=False)


def intent_endpoints(model, holder, catalog_embeddings, max_k, user_spec, retrieve_spec) -> dict:
    """`query_intent` and `retrieve_by_intent` (see the module docstring): `{name: (function, input spec)}`.

    `retrieve_by_intent` scans the catalog's embeddings exactly: the
    brute-force index's (`holder.catalog_embeddings`) where the export has
    them, else a copy of `catalog_embeddings`.
    """
    schema = model.schema
    task = model.intent_task
    n_top = min(INTENT_TOP_CATEGORIES, task.num_categories)
    num_items = int(holder.catalog_ids.shape[0])
    if not hasattr(holder, "catalog_embeddings"):  # a partitioned index stores them in its own order
        holder.intent_item_embedding = tf.Variable(np.asarray(catalog_embeddings, np.float32), trainable=False)
    embeddings = holder.catalog_embeddings if hasattr(holder, "catalog_embeddings") else holder.intent_item_embedding

    def query_intent(features):
        probabilities = model.predict_intent(fit_history(features, schema))["intent_probabilities"]
        top = tf.math.top_k(probabilities, k=n_top)
        return {"categories": tf.gather(holder.intent_categories, top.indices), "probabilities": top.values}

    def retrieve_by_intent(features):
        features = dict(features)
        k = tf.cast(tf.reshape(features.pop("k"), [-1]), tf.int32)
        exclude = features.pop("exclude_item_ids")
        boost = tf.reshape(tf.cast(features.pop("intent_boost"), tf.float32), [-1])
        wanted = features.pop("intent_filter")  # [B, F] category names, "" = none
        query = model.query_outputs(fit_history(features, schema))
        probabilities = task(query["hidden"])["intent_probabilities"]  # [B, C]
        scores = tf.matmul(tf.cast(query["embedding"], tf.float32), embeddings, transpose_b=True)  # [B, N]
        item_class = holder.intent_item_class
        p_item = tf.gather(probabilities, tf.maximum(item_class, 0), axis=1)  # P(item's category | query)
        known = tf.broadcast_to(item_class[None, :] >= 0, tf.shape(p_item))
        log_p = tf.math.log(tf.where(known, tf.maximum(p_item, 1e-9), 1e-9))
        scores = scores + boost[:, None] * log_p
        # The filter: the catalog's category groups each row lists; a row of "" lists none and keeps every item.
        named = wanted != ""
        listed = tf.reduce_any(
            tf.logical_and(tf.equal(wanted[:, :, None], holder.intent_groups[None, None, :]), named[:, :, None]),
            axis=1,
        )  # [B, groups]
        allowed = tf.gather(listed, holder.intent_item_group, axis=1)  # [B, N]
        allowed = tf.logical_or(allowed, tf.logical_not(tf.reduce_any(named, axis=1))[:, None])
        scores = tf.where(allowed, scores, tf.constant(-np.inf, tf.float32))
        # Exclusions as -inf cells (a scatter: O(B x E), as `BruteForceIndex` does).
        excluded = tf.cast(holder.catalog_index.lookup(exclude), tf.int64)  # [B, E], -1 if unknown
        where = tf.where(excluded >= 0)
        cells = tf.stack([where[:, 0], tf.gather_nd(excluded, where)], axis=1)
        scores = tf.tensor_scatter_nd_update(scores, cells, tf.fill([tf.shape(cells)[0]], -np.inf))
        width = tf.maximum(tf.minimum(tf.minimum(tf.reduce_max(k), max_k), num_items), 1)
        top = tf.math.top_k(scores, k=width)
        keep = tf.logical_and(tf.range(width)[None, :] < k[:, None], tf.math.is_finite(top.values))
        return {
            "item_ids": tf.where(keep, tf.gather(holder.catalog_ids, top.indices), ""),
            "scores": tf.where(keep, top.values, tf.constant(-np.inf, tf.float32)),
            "categories": tf.where(keep, tf.gather(holder.intent_item_category, top.indices), ""),
        }

    intent_spec = {
        **retrieve_spec,
        "intent_boost": tf.TensorSpec([None], tf.float32, name="intent_boost"),
        "intent_filter": tf.TensorSpec([None, None], tf.string, name="intent_filter"),
    }
    return {"query_intent": (query_intent, user_spec), "retrieve_by_intent": (retrieve_by_intent, intent_spec)}


def _user_value_endpoint(model, schema, value_keys):
    def user_value(features):
        out = model.predict_user_value(fit_history(features, schema))
        return {k: out[k] for k in value_keys if k in out}

    return user_value


def example_inputs(model, examples: pd.DataFrame, k=10) -> dict[str, dict[str, np.ndarray]]:
    """Signature inputs (numpy) for the rows of `examples`, per signature."""
    schema = model.schema
    user = features_of(examples, schema, schema.user_feature_names)
    if not has_items(model):
        return {"serving_default": user, "user_value": user}
    item = features_of(examples, schema, schema.item_feature_names)
    n = len(examples)
    retrieve = dict(user)
    retrieve["k"] = np.full(n, k, np.int32)
    retrieve["exclude_item_ids"] = np.full((n, 1), "", dtype=object)
    both = {**user, **item}
    inputs = {
        "score": both,
        "serving_default": both,
        user_signature(schema)[0]: user,
        "encode_item": item,
        "retrieve": retrieve,
        "rank": retrieve,
        "rank_weighted": {
            **retrieve,
            **{name: np.full(n, getattr(model.config.fusion, name), np.float32) for name in FUSION_WEIGHTS},
        },
        "user_value": user,
        "query_intent": user,
        "retrieve_by_intent": {
            **retrieve,
            "intent_boost": np.zeros(n, np.float32),
            "intent_filter": np.full((n, 1), "", dtype=object),
        },
    }
    return {name: inputs[name] for name in signature_names(model)}


def write_warmup_requests(path, model_name, inputs_by_signature, max_records=1000):
    """TF Serving warm-up file: one PredictionLog per signature (at most `max_records`)."""
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

    count = 0
    with tf.io.TFRecordWriter(path) as writer:
        for signature, inputs in inputs_by_signature.items():
            if count >= max_records:
                break
            request = predict_pb2.PredictRequest(
                model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
            )
            for name, value in inputs.items():
                value = np.asarray(value)
                if value.dtype == object:
                    value = value.astype(str).astype(bytes)
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
            count += 1
    return count


def _json_value(value):
    """numpy numbers as JSON numbers, dates (YAML configs) and the rest as strings."""
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _dir_size(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def _write_archive(model, endpoints, holder, path):
    """Traces the signatures and writes the SavedModel; a frozen encoder's text cache stays out of it."""
    encoder = getattr(model, "text_encoder", None)
    with encoder.text_cache_disabled() if encoder is not None else contextlib.nullcontext():
        archive = keras.export.ExportArchive()
        # The model's components (towers, tasks) and the catalog are layers that
        # ExportArchive tracks with their variables and lookup tables.
        for layer in model.components() + ([holder] if holder is not None else []):
            archive.track(layer)
        # The default signature's endpoint first: ExportArchive serves the first endpoint
        # as `serving_default` too (documented in `write_out`), the same traced function.
        default = _default_signature(model)
        for name in [default] + [n for n in endpoints if n != default]:
            fn, spec = endpoints[name]
            archive.add_endpoint(name, tf.function(fn), input_signature=[spec])
        archive.write_out(path, verbose=False)


def export_model(
    model,
    base_dir: str,
    *,
    catalog: pd.DataFrame | None = None,
    model_name: str = "tfrec",
    version: int | None = None,
    max_k: int = 100,
    keep_versions: int = 3,
    examples: pd.DataFrame | None = None,
    metrics: dict | None = None,
    training_config: dict | None = None,
    verbose: bool = True,
    retrieval_index: str = "brute_force",
    index_options: dict | None = None,
) -> ExportResult:
    """Writes a new version of `model` under `base_dir/model_name/` atomically.

    Args:
        model: a trained `TwoTowerModel` or `UserValueModel`.
        base_dir: TF Serving's model base directory (`--model_base_path`'s parent).
        catalog: the items `retrieve` searches: the schema's item columns
            (None for a `UserValueModel`, which has no items).
        model_name: folder name and `model_spec.name` of warm-up requests.
        version: version number; default: one above the highest present.
        max_k: most items `retrieve` returns per query.
        keep_versions: versions kept after publishing (older ones removed).
        examples: rows for the warm-up requests (default: the catalog's
            first rows for item signatures; user signatures need user columns,
            so without examples only item signatures get warm-up records).
        metrics, training_config: copied into the manifest.
        retrieval_index: how `retrieve` searches the catalog: `"brute_force"`
            (exact, the default) or `"partitioned"` (k-means inverted file,
            scans about `probe / clusters` of the catalog; for catalogs of
            ~1M items, see `benchmarks/retrieve_scaling.py`).
        index_options: for `"partitioned"`: `clusters`, `probe`,
            `iterations`, `seed` (`tfrec.export.retrieval_index.PartitionedIndex`).
    """
    schema = model.schema
    items = has_items(model)
    if items:
        if catalog is None:
            raise ValueError("export_model: a two-tower model needs the catalog that retrieve searches")
        if not schema.item_id:
            raise ValueError("export_model: the schema has no item_id; retrieve needs catalog ids")
        if len(catalog) == 0:
            raise ValueError("export_model: the catalog is empty")
        if catalog[schema.item_id].duplicated().any():
            raise ValueError(f"export_model: catalog column '{schema.item_id}' has duplicate ids")
    elif examples is None:
        raise ValueError("export_model: a user-value model needs examples (rows of user features) for warm-up")
    if max_k < 1:
        raise ValueError(f"export_model: max_k must be >= 1, got {max_k}")
    t0 = time.time()
    model_dir = os.path.join(base_dir, model_name)
    os.makedirs(model_dir, exist_ok=True)
    existing = version_numbers(model_dir)
    version = int(version) if version is not None else (existing[-1] + 1 if existing else 1)
    final = os.path.join(model_dir, str(version))
    if os.path.exists(final):
        raise FileExistsError(f"export_model: version {version} already exists at {final}; versions are immutable")
    staging = os.path.join(model_dir, f".tmp-{version}-{uuid.uuid4().hex[:8]}")

    index = holder = None
    catalog_ids = np.zeros(0, dtype=object)
    if items:
        assert catalog is not None  # checked above
        catalog_ids = catalog[schema.item_id].astype(str).to_numpy()
        catalog_embeddings = encode_items(model, catalog).astype(np.float32)
        index = make_index(retrieval_index, catalog_embeddings, **(index_options or {}))
        holder = ServingCatalog(catalog_ids, name="tfrec_serving")
        if "rank" in signature_names(model):
            attach_ranking_catalog(model, holder, catalog)
        if "query_intent" in signature_names(model):
            attach_intent_catalog(model, holder, catalog)
        endpoints = build_signatures(model, catalog_ids, catalog_embeddings, max_k, holder, index=index)
    else:
        endpoints = build_signatures(model, None, None, max_k, None)
    try:
        _write_archive(model, endpoints, holder, staging)
        extra = os.path.join(staging, "assets.extra")
        os.makedirs(extra, exist_ok=True)
        if examples is not None:
            inputs = example_inputs(model, examples.head(8))
        else:  # a two-tower model (a user-value model needs examples): item signatures only
            assert catalog is not None
            inputs = {"encode_item": features_of(catalog.head(8), schema, schema.item_feature_names)}
        n_warm = write_warmup_requests(os.path.join(extra, WARMUP_FILE), model_name, inputs)
        manifest = {
            "model_name": model_name,
            "version": version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "signatures": signature_names(model),
            "max_k": max_k,
            "catalog_size": int(len(catalog_ids)),
            "retrieval_index": index.describe() if index is not None else None,
            "schema": schema.to_dict(),
            "model_config": model.config.to_dict(),
            "training_config": training_config,
            "metrics": metrics,
            "packages": _package_versions(),
            "warmup_records": n_warm,
        }
        with open(os.path.join(extra, MANIFEST_FILE), "w") as f:
            json.dump(manifest, f, indent=2, default=_json_value)
        os.rename(staging, final)  # atomic on one filesystem
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    export_seconds = time.time() - t0
    for old in version_numbers(model_dir)[:-keep_versions] if keep_versions > 0 else []:
        # Renamed away first, so a poller never sees a half-deleted version.
        doomed = os.path.join(model_dir, f".deleting-{old}-{uuid.uuid4().hex[:8]}")
        os.rename(os.path.join(model_dir, str(old)), doomed)
        shutil.rmtree(doomed, ignore_errors=True)
    t1 = time.time()
    import tensorflow_text  # noqa: F401  (registers the TF Text ops for loading in Python)

    tf.saved_model.load(final)
    load_seconds = time.time() - t1
    result = ExportResult(final, version, _dir_size(final), export_seconds, load_seconds, signature_names(model))
    if verbose:
        print(
            f"exported {final}: {result.size_bytes / 1e6:.1f} MB in {export_seconds:.1f}s; "
            f"cold load {load_seconds:.1f}s; signatures {', '.join(signature_names(model))}",
            flush=True,
        )
    return result
