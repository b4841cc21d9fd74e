"""A frozen encoder's text cache, and models that start from what a pretrained encoder knows.

A small randomly initialised BERT, frozen, stands in for MiniLM: the
properties (cached outputs equal uncached ones; the untrained model ranks as
the encoder's cosine) hold for any encoder, and a tiny one keeps the tests fast.
"""

import sys

import keras
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
from tfrec.models.inference import features_of, predict_dataframe  # noqa: E402
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


def test_untrained_model_ranks_as_the_encoders_cosine(table):
    model = _model(table)
    out = predict_dataframe(model, table)
    cosine = _cosine(model, table)
    width = 8 + model.text_encoder.output_dim
    assert out["query_embedding"].shape[1] == width == model.item_tower.output_dim
    # score = a * cosine + (1 - a) * (learned towers' cosine), a = 0.98 at the start
    assert np.abs(out["score"] - 0.98 * cosine).max() <= 0.02 + 1e-5
    assert spearmanr(out["score"], cosine).statistic > 0.95
    # The relevance head starts from the score alone: the same order.
    assert spearmanr(out["relevance"], out["score"]).statistic > 0.999
    off = predict_dataframe(_model(table, share=0.0), table)
    assert off["query_embedding"].shape[1] == 8
    assert spearmanr(off["relevance"], cosine).statistic < 0.9  # random heads: not the encoder's order


def test_started_model_trains_saves_and_reloads_with_its_cache(table, tmp_path):
    from tfrec.data.pipeline import dataset_from_dataframe

    model = _model(table)
    assert cache_table_texts(model, table, verbose=False) == len(set(table.search_query) | set(table.title))
    before = float(tf.sigmoid(model.query_tower.text_share_logit).numpy())
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    model.fit(dataset_from_dataframe(table, SCHEMA, batch_size=64), epochs=2, verbose=0)
    assert float(tf.sigmoid(model.query_tower.text_share_logit).numpy()) != pytest.approx(before)  # learned
    expected = predict_dataframe(model, table)
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert reloaded.text_encoder.cached_texts() is None  # not saved: the encoder runs on every text
    assert reloaded.query_tower.text_share == 0.98 and reloaded.relevance_task.start_from_score
    got = predict_dataframe(reloaded, table)
    copy_text_cache(model, reloaded)
    cached = predict_dataframe(reloaded, table)
    for key in ("score", "relevance", "query_embedding"):
        np.testing.assert_allclose(got[key], expected[key], atol=1e-4)
        np.testing.assert_allclose(cached[key], expected[key], atol=1e-4)


def test_export_with_a_cache_holds_the_encoder_not_the_cache(table, tmp_path):
    from tfrec.export.saved_model import export_model

    model = _model(table)
    cache_table_texts(model, table, verbose=False)
    predict_dataframe(model, table.head(8))  # builds every part (export needs built layers)
    catalog = table.drop_duplicates("sku")[["sku", "title", "category", "price"]]
    result = export_model(model, str(tmp_path), catalog=catalog, examples=table.head(8), verbose=False)
    assert model.text_encoder.cached_texts() is not None  # restored after the export
    loaded = tf.saved_model.load(result.path)
    rows = table.head(16).assign(search_query=["a query never seen before"] * 16)
    inputs = features_of(rows, SCHEMA, ["search_query", "sku", "title", "category", "price"])
    served = loaded.signatures["score"](**{c: tf.constant(v) for c, v in inputs.items()})
    np.testing.assert_allclose(served["relevance"].numpy(), predict_dataframe(model, rows)["relevance"], atol=1e-4)
