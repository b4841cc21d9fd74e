import numpy as np
import pytest
import tensorflow as tf

from tfrec.layers.id_embedding import IdEmbedding
from tfrec.layers.masked_mean_pooling import MaskedMeanPooling
from tfrec.layers.multi_task_block import MultiTaskBlock
from tfrec.layers.numeric_features import NumericFeatures


def test_unseen_ids_go_to_oov_buckets_never_errors():
    emb = IdEmbedding(["a", "b", "c"], output_dim=4, num_oov=2)
    index = emb.index(tf.constant(["a", "c", "never-seen", "", "zzz"])).numpy()
    assert index[0] == 2 and index[1] == 4  # known ids after the 2 OOV buckets
    assert all(0 <= i < 2 for i in index[2:])  # unknown -> an OOV bucket
    assert emb(tf.constant(["never-seen"])).shape == (1, 4)
    config = emb.get_config()
    assert config["vocabulary"] == 3  # the size: the ids are an asset, not in the JSON config
    clone = IdEmbedding.from_config(config)
    assert len(clone.vocabulary) == 3 and clone.num_oov == 2 and clone.input_dim == emb.input_dim


def test_id_dropout_only_in_training():
    emb = IdEmbedding([str(i) for i in range(100)], output_dim=2, num_oov=1, id_dropout=0.5, seed=1)
    ids = tf.constant([str(i) for i in range(100)])
    emb.build()
    table = emb.embedding.embeddings.numpy()
    trained = emb(ids, training=True).numpy()
    inferred = emb(ids, training=False).numpy()
    np.testing.assert_allclose(inferred, table[1:])
    dropped = np.all(np.isclose(trained, table[0]), axis=1).mean()
    assert 0.3 < dropped < 0.7


def test_numeric_features_scale_log_and_flag_missing():
    values = np.array([[1.0, 10.0], [3.0, 100.0], [np.nan, 1000.0]])
    layer = NumericFeatures.fit(values, log_scale=[False, True])
    out = layer(tf.constant(values, tf.float32)).numpy()
    assert out.shape == (3, 4)
    np.testing.assert_allclose(out[:2, 0], [-1.0, 1.0], atol=1e-5)  # mean 2, std 1
    assert out[2, 0] == 0.0 and out[2, 2] == 1.0 and out[0, 2] == 0.0  # missing -> 0 + flag
    logs = np.log1p([10.0, 100.0, 1000.0])
    np.testing.assert_allclose(out[:, 1], (logs - logs.mean()) / logs.std(), rtol=1e-4)
    assert len(NumericFeatures.from_config(layer.get_config()).mean) == 2  # counts only; the values are an asset


def test_masked_mean_pooling():
    vectors = tf.constant([[[1.0, 1.0], [3.0, 5.0]], [[2.0, 2.0], [9.0, 9.0]]])
    mask = tf.constant([[True, True], [False, False]])
    np.testing.assert_allclose(MaskedMeanPooling()(vectors, mask).numpy(), [[2.0, 3.0], [0.0, 0.0]])


@pytest.mark.parametrize("structure", ["shared_bottom", "mmoe", "ple"])
def test_multi_task_block(structure):
    block = MultiTaskBlock(structure, num_tasks=2, num_experts=3, units=[8])
    outputs = block(tf.random.normal([5, 6]))
    assert len(outputs) == 2 and all(o.shape == (5, 8) for o in outputs)
    if structure != "shared_bottom":
        # Each task has its own gate, so the task outputs differ.
        assert not np.allclose(outputs[0].numpy(), outputs[1].numpy())
    clone = MultiTaskBlock.from_config(block.get_config())
    assert clone.structure == structure and clone.num_tasks == 2
    with pytest.raises(ValueError, match="structure"):
        MultiTaskBlock("moe")


def test_bag_of_words_encoder():
    from tfrec.layers.bag_of_words_encoder import BagOfWordsEncoder

    enc = BagOfWordsEncoder.from_corpus(["Red running shoes", "red mug", "oak desk"], output_dim=4, max_words=3)
    assert enc.vocabulary[0] == "red" and "running" in enc.vocabulary
    out = enc(tf.constant(["RED, shoes!", "", "unknown words only here"])).numpy()
    assert out.shape == (3, 4)
    table = enc.words.embedding.embeddings.numpy()
    red, shoes = enc.words.index(tf.constant(["red", "shoes"])).numpy()
    np.testing.assert_allclose(out[0], (table[red] + table[shoes]) / 2, rtol=1e-5)  # punctuation/case removed
    np.testing.assert_allclose(out[1], 0.0)  # empty text -> zeros
    assert len(BagOfWordsEncoder.from_config(enc.get_config()).vocabulary) == len(enc.vocabulary)


def test_vocabularies_and_statistics_are_assets_not_config(tmp_path):
    """The .keras JSON config holds sizes; the ids and statistics travel as assets and come back on load."""
    import json
    import zipfile

    import keras

    from tfrec.layers.feature_encoders import ItemFeatureEncoder

    ids = [f"item-{i}" for i in range(500)]
    enc = ItemFeatureEncoder(
        id_column="item_id",
        id_vocabulary=ids,
        categorical={"brand": ["acme", "zeta"]},
        numeric_columns=["price"],
        numeric_stats={"mean": [2.5], "std": [0.5], "log_scale": [True]},
        embedding_dim=4,
        name="items",
    )
    inputs = {
        "item_id": keras.Input((), dtype="string", name="item_id"),
        "brand": keras.Input((), dtype="string", name="brand"),
        "price": keras.Input((), dtype="float32", name="price"),
    }
    model = keras.Model(inputs, enc(inputs))
    path = tmp_path / "m.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json").decode()
        assets = [n for n in archive.namelist() if n.startswith("assets/")]
    assert "item-499" not in config and "acme" not in config and "2.5" not in config
    assert len(json.dumps(json.loads(config))) < 10_000
    assert any(n.endswith("vocabulary.json") for n in assets) and any(n.endswith("statistics.json") for n in assets)
    loaded = keras.models.load_model(path)
    batch = {
        "item_id": tf.constant(["item-7", "item-499", "new"]),
        "brand": tf.constant(["zeta", "acme", "x"]),
        "price": tf.constant([1.0, 30.0, np.nan]),
    }
    np.testing.assert_array_equal(loaded(batch).numpy(), model(batch).numpy())
    restored = loaded.get_layer("items")
    assert restored.id_embedding.vocabulary == ids and restored.numeric.mean == [2.5]
