"""A frozen encoder's text cache, and models that start from what a pretrained encoder knows.

A small randomly initialised BERT, frozen, stands in for MiniLM: the
properties (cached outputs equal uncached ones; the untrained model ranks as
the encoder's cosine) hold for any encoder, and a tiny one keeps the tests fast.
"""

import sys

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from scipy.stats import spearmanr

sys.path.insert(0, "tests")
from test_tables import search_table  # noqa: E402

from tfrec.layers.text_encoder import TextEncoder  # noqa: E402
from tfrec.models.builder import build_model  # noqa: E402
from tfrec.models.config import ModelConfig  # noqa: E402
from tfrec.models.inference import predict_dataframe  # noqa: E402
from tfrec.models.text_cache import cache_table_texts, copy_text_cache  # noqa: E402
from tfrec.schema import FeatureSchema  # noqa: E402

TEXTS = ["red running shoes", "oak desk", "blue shoes", "green lamp", "desk lamp"]


def frozen_encoder(corpus=TEXTS * 5):
    enc = TextEncoder.from_scratch(
        corpus, vocabulary_size=120, hidden_dim=16, num_layers=1, num_heads=2, dropout=0.0, name="text_encoder"
    )
    enc.trainable = False
    return enc


def test_cached_vectors_equal_the_encoders_and_unknown_texts_still_encode():
    enc = frozen_encoder()
    batch = tf.constant(["red running shoes", "oak desk", "a text never cached"])
    expected = enc(batch).numpy()
    assert enc.cache_texts(["oak desk", "red running shoes", "oak desk"]) == 2  # unique texts, once
    assert enc.cache_texts(["oak desk"]) == 0
    np.testing.assert_allclose(enc(batch).numpy(), expected, atol=1e-5)
    graph = tf.function(lambda t: enc(t))
    np.testing.assert_allclose(graph(batch).numpy(), expected, atol=1e-5)  # misses encoded in the graph too
    np.testing.assert_allclose(graph(tf.constant(["oak desk"])).numpy(), expected[1:2], atol=1e-5)
    texts, vectors = enc.cached_texts()
    assert texts == ["oak desk", "red running shoes"] and vectors.shape == (2, 16)


def test_cache_is_refused_for_a_trainable_encoder_and_stays_out_of_saves(tmp_path):
    enc = TextEncoder.from_scratch(TEXTS * 5, vocabulary_size=120, hidden_dim=16, num_layers=1, num_heads=2)
    with pytest.raises(ValueError, match="trainable"):
        enc.cache_texts(["oak desk"])
    enc.trainable = False
    enc.cache_texts(["oak desk"])
    assert "_text_cache" not in str(enc.get_config()) and enc.cached_texts() is not None
    with enc.text_cache_disabled():
        assert enc.cached_texts() is None
    assert enc.cached_texts() is not None
    with pytest.raises(ValueError, match="shape"):
        enc.set_text_cache(["a", "b"], np.zeros((2, 3)))
    enc.clear_text_cache()
    assert enc.cached_texts() is None


SCHEMA = FeatureSchema(
    query_text="search_query",
    item_id="sku",
    item_text="title",
    item_categorical=["category"],
    item_price="price",
    relevance_label="grade",
    relevance_range=(1.0, 3.0),
    position="slot",
)


@pytest.fixture(scope="module")
def table():
    return search_table(sessions=120, graded=True)


def _model(table, share=0.98, schema=SCHEMA):
    config = ModelConfig.from_dict(
        {
            "embedding_dim": 8,
            "id_embedding_dim": 4,
            "tower_units": [16],
            "expert_units": [8],
            "cross_layers": 1,
            # "minilm" marks the encoder as pretrained; the tiny frozen one given stands in for it.
            "text": {"preset": "minilm", "trainable": False, "text_share": share},
        }
    )
    corpus = pd.unique(pd.concat([table.search_query, table.title])).tolist()
    return build_model(schema, config, table, text_encoder=frozen_encoder(corpus))


def _cosine(model, table):
    enc = model.text_encoder
    q = enc(tf.constant(table.search_query.tolist())).numpy()
    t = enc(tf.constant(table.title.tolist())).numpy()
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    t /= np.linalg.norm(t, axis=1, keepdims=True)
    return (q * t).sum(1)


@pytest.fixture(scope="module")
def started(table):
    """A model started from the (stand-in) pretrained encoder, and its untrained outputs."""
    model = _model(table)
    return model, predict_dataframe(model, table)


def test_untrained_model_ranks_as_the_encoders_cosine(table, started):
    model, out = started
    cosine = _cosine(model, table)
    width = 8 + model.text_encoder.output_dim
    assert out["query_embedding"].shape[1] == width == model.item_tower.output_dim
    # score = a * cosine + (1 - a) * (learned towers' cosine), a = 0.98 at the start
    assert np.abs(out["score"] - 0.98 * cosine).max() <= 0.02 + 1e-5
    assert spearmanr(out["score"], cosine).statistic > 0.95
    # The relevance head starts from the score alone: the same order, at the level of the training labels.
    assert spearmanr(out["relevance"], out["score"]).statistic > 0.999
    assert abs(out["relevance"].mean() - table.grade.mean()) < 0.2
    off = predict_dataframe(_model(table, share=0.0), table)
    assert off["query_embedding"].shape[1] == 8
    assert spearmanr(off["relevance"], cosine).statistic < 0.9  # random heads: not the encoder's order


def test_started_model_is_validated_first_kept_unless_beaten_reloads_and_exports(table, started, tmp_path, monkeypatch):
    """Training with a cache; the untrained start kept (no epoch beats it); .keras round trip; export."""
    from tfrec.evaluation.validation import ranking_validation
    from tfrec.export.saved_model import export_model
    from tfrec.jobs.config import TrainingConfig
    from tfrec.training.epoch_data import EpochBatches
    from tfrec.training.job import starts_from_encoder
    from tfrec.training.trainer import Trainer

    model, start = started
    assert starts_from_encoder(model)
    assert cache_table_texts(model, table, verbose=False) == len(set(table.search_query) | set(table.title))
    real = ranking_validation(SCHEMA, table.assign(query_key=table.search_query), k=10)
    assert 0.0 < real(model)["ndcg@10"] <= 1.0
    share = float(tf.sigmoid(model.query_tower.text_share_logit).numpy())
    scripted = [0.9, 0.1, 0.2]  # the start ranks best; no epoch beats it
    training = TrainingConfig(
        epochs=2, batch_size=64, monitor="val_ndcg@10", early_stopping_patience=0, tensorboard=False, verbose=0
    )
    trainer = Trainer(model, training, str(tmp_path / "run"))
    history = trainer.fit(
        EpochBatches.from_dataframe(table, SCHEMA, 64, seed=0),
        epoch_metrics=lambda m: {"ndcg@10": scripted.pop(0)},
        validate_start=True,
    )
    assert [row["epoch"] for row in history] == [0, 1, 2] and history[0]["optimizer_steps"] == 0
    assert float(tf.sigmoid(model.query_tower.text_share_logit).numpy()) != pytest.approx(share)  # it learns
    kept = trainer.finalize()  # reloaded from model.keras: no cache
    assert kept.text_encoder.cached_texts() is None
    assert kept.query_tower.text_share == 0.98 and kept.relevance_task.start_from_score
    for key in ("score", "relevance", "query_embedding"):
        np.testing.assert_allclose(predict_dataframe(kept, table)[key], start[key], atol=1e-4)
    copy_text_cache(model, kept)
    assert kept.text_encoder.cached_texts() is not None
    np.testing.assert_allclose(predict_dataframe(kept, table)["relevance"], start["relevance"], atol=1e-4)

    # Exports trace every signature with the cache off (the served graph holds the encoder, not the
    # cache); tests/test_bundled_configs.py serves a MiniLM model's export end to end.
    import keras

    seen = []

    class Traced(Exception):
        pass

    def add_endpoint(archive, name, fn, input_signature=None):
        seen.append(kept.text_encoder.cached_texts())

    def write_out(archive, path, **kwargs):
        raise Traced

    archive_class = type(keras.export.ExportArchive())  # the backend's subclass
    monkeypatch.setattr(archive_class, "add_endpoint", add_endpoint)
    monkeypatch.setattr(archive_class, "write_out", write_out)
    catalog = table.drop_duplicates("sku")[["sku", "title", "category", "price"]]
    with pytest.raises(Traced):
        export_model(kept, str(tmp_path / "models"), catalog=catalog, examples=table.head(8), verbose=False)
    assert seen and all(cache is None for cache in seen)
    assert kept.text_encoder.cached_texts() is not None  # restored after the export
    with pytest.raises(ValueError, match="val_ndcg@K"):
        TrainingConfig(monitor="val_recall")


def test_inference_functions_are_traced_once_per_model_and_again_when_the_text_cache_changes(table):
    from tfrec.models.inference import encode_queries, traced

    model = _model(table)
    uncached = encode_queries(model, table)
    fn = traced(model, "encode_query")
    assert traced(model, "encode_query") is fn
    again = encode_queries(model, table.head(7))  # another batch size: the relaxed trace is reused
    np.testing.assert_allclose(again, uncached[:7], atol=1e-6)  # padded to its own longest text
    traces = fn.experimental_get_tracing_count()
    encode_queries(model, table)
    assert fn.experimental_get_tracing_count() == traces  # reused, not traced again
    # Caching the texts changes what a trace bakes in: a new function, the same vectors.
    assert model.text_encoder.cache_texts(table.search_query.tolist()) > 0
    assert traced(model, "encode_query") is not fn
    np.testing.assert_allclose(encode_queries(model, table), uncached, atol=1e-5)
    cached_fn = traced(model, "encode_query")
    with model.text_encoder.text_cache_disabled():
        assert traced(model, "encode_query") is not cached_fn
        np.testing.assert_allclose(encode_queries(model, table), uncached, atol=1e-5)
    assert traced(model, "encode_query") is not fn  # the cache is back: traced for it


def test_length_sorted_batches_give_the_unsorted_answers_in_the_rows_order(table):
    from tfrec.models.inference import (
        encode_items,
        encode_queries,
        features_of,
        length_order,
        predict_dataframe,
        predictor,
    )

    model = _model(table)
    rows = table.sample(n=200, random_state=3).reset_index(drop=True)
    extra = np.random.default_rng(0).integers(0, 6, (2, len(rows)))  # 0-5 more words: lengths in no order
    rows["title"] = [t + " oak" * int(n) for t, n in zip(rows.title, extra[0])]
    rows["search_query"] = [q + " red" * int(n) for q, n in zip(rows.search_query, extra[1])]
    words = rows.title.str.split().str.len().to_numpy()
    order = length_order(features_of(rows, model.schema), ["title"])
    assert (np.diff(words[order]) >= 0).all() and not (np.diff(words) >= 0).all()
    for fn in (encode_queries, encode_items):
        np.testing.assert_allclose(
            fn(model, rows, batch_size=16), fn(model, rows, batch_size=16, sort_by_length=False), atol=1e-5
        )
    with_order = predict_dataframe(model, rows, batch_size=16)
    plain = predictor(model, batch_size=16, sort_by_length=False)(features_of(rows, model.schema))
    assert set(plain) == set(with_order)
    for key in plain:
        np.testing.assert_allclose(with_order[key], plain[key], atol=1e-5, err_msg=key)
