"""`SequenceEncoder` and the history path that reads it with item ids shared with the item tower."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from layer_harness import run_layer_test

from tfrec.layers.feature_encoders import ItemFeatureEncoder, UserFeatureEncoder
from tfrec.layers.id_embedding import IdEmbedding
from tfrec.layers.masked_mean_pooling import MaskedMeanPooling
from tfrec.layers.sequence_encoder import SequenceEncoder
from tfrec.models import ModelConfig, build_model

DIM = 8


def vectors(batch, length, seed=0):
    return tf.random.stateless_normal([batch, length, DIM], seed=[seed, 1])


def encoder(**kwargs):
    keras.utils.set_random_seed(0)
    return SequenceEncoder(**{"max_length": 6, "num_layers": 1, "num_heads": 2, "dropout": 0.0, **kwargs})


def test_order_changes_the_output_where_a_mean_does_not():
    enc = encoder()
    items = vectors(1, 3)
    mask = tf.ones([1, 3], "bool")
    reordered = tf.gather(items, [2, 0, 1], axis=1)
    assert np.abs(enc(items, mask).numpy() - enc(reordered, mask).numpy()).max() > 1e-3
    pool = MaskedMeanPooling()
    np.testing.assert_allclose(pool(items, mask).numpy(), pool(reordered, mask).numpy(), rtol=1e-6)


@pytest.mark.parametrize("pooling", ["last", "mean", "last_mean"])
def test_padding_does_not_change_the_output(pooling):
    enc = encoder(pooling=pooling)
    items = vectors(2, 3)
    mask = tf.constant([[True, True, True], [False, True, True]])
    out = enc(items, mask).numpy()
    # More left padding (as pad_history writes it), with anything at the padded positions.
    padded = tf.concat([vectors(2, 3, seed=7) * 100.0, items], axis=1)
    padded_mask = tf.concat([tf.zeros([2, 3], "bool"), mask], axis=1)
    np.testing.assert_allclose(enc(padded, padded_mask).numpy(), out, atol=1e-5)
    # Right padding: positions count back from the most recent valid item.
    right = tf.concat([items[1:, 1:], vectors(1, 1, seed=3)], axis=1)
    np.testing.assert_allclose(enc(right, tf.constant([[True, True, False]])).numpy(), out[1:], atol=1e-5)
    assert out.shape == (2, 2 * DIM if pooling == "last_mean" else DIM)


def test_empty_history_gives_zeros_and_recency_beyond_max_length_is_shared():
    enc = encoder(max_length=2)
    out = enc(vectors(2, 4), tf.constant([[False] * 4, [True] * 4])).numpy()
    np.testing.assert_array_equal(out[0], 0.0)
    assert np.isfinite(out).all() and np.abs(out[1]).sum() > 0


def test_layer_harness_and_config(tmp_path):
    enc = encoder(num_layers=2, intermediate_dim=12, pooling="last_mean", name="history_encoder")
    mask = tf.constant([[False, True, True, True], [False, False, False, False], [True, True, True, True]])
    run_layer_test(enc, (vectors(3, 4), mask), tmp_path, expected_shapes={"0": (3, 2 * DIM)})
    assert enc.get_config()["num_layers"] == 2 and len(enc.blocks) == 2
    with pytest.raises(ValueError, match="pooling"):
        SequenceEncoder(4, pooling="max")


def test_mixed_precision_bfloat16():
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        out = encoder()(vectors(2, 5), tf.constant([[True] * 5, [False, False, True, True, True]]))
        users = UserFeatureEncoder(
            history_column="h",
            history_vocabulary=["a", "b"],
            history_encoder=encoder(),
            embedding_dim=DIM,
            dtype="float32",
        )
        profile, _ = users({"h": tf.constant([["", "a", "b"], ["", "", ""]])})
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out.dtype == tf.bfloat16 and np.isfinite(out.numpy().astype(np.float32)).all()
    assert profile.dtype == tf.float32 and profile.shape == (2, DIM) and np.isfinite(profile.numpy()).all()


def test_encoders_share_one_item_table(tmp_path):
    table = IdEmbedding(["x", "y", "z"], DIM, num_oov=2, name="item_id_embedding")
    items = ItemFeatureEncoder(id_column="item", id_embedding=table, embedding_dim=DIM, num_oov=2)
    users = UserFeatureEncoder(
        history_column="h", history_embedding=table, history_encoder=encoder(), embedding_dim=DIM, num_oov=2
    )
    history = tf.constant([["", "x", "y"], ["z", "y", "x"]])
    inputs = {"item": keras.Input((), dtype="string", name="item"), "h": keras.Input((3,), dtype="string", name="h")}
    model = keras.Model(inputs, {"item": items(inputs), "user": users(inputs)[0]})
    data = {"item": tf.constant(["x", "q"]), "h": history}
    before = model(data)
    path = str(tmp_path / "shared.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    after = loaded(data)
    for key in before:
        np.testing.assert_array_equal(after[key].numpy(), before[key].numpy())
    loaded_users, loaded_items = (loaded.get_layer(users.name), loaded.get_layer(items.name))
    assert loaded_users.history_embedding is loaded_items.id_embedding
    assert len(loaded.weights) == len(model.weights)
    assert len(loaded_items.id_embedding.vocabulary) == 3


# ------------------------------------------------------------------ model


def _data():
    import pandas as pd

    from tfrec.data.validation import validate
    from tfrec.schema import FeatureSchema

    rng = np.random.default_rng(0)
    items = [f"i{k}" for k in range(15)]
    rows = [
        {
            "user": f"u{u % 30}",
            "history": list(rng.choice(items, size=rng.integers(0, 6))),
            "item": str(rng.choice(items)),
            "country": str(rng.choice(["uk", "fr"])),
        }
        for u in range(96)
    ]
    schema = FeatureSchema(
        user_id="user", user_history="history", user_categorical=["country"], item_id="item", history_length=4
    )
    return schema, validate(pd.DataFrame(rows), schema).valid


def _config(**kwargs):
    base = dict(embedding_dim=8, id_embedding_dim=DIM, tower_units=[8], use_text=False, dropout=0.0)
    return ModelConfig(**{**base, **kwargs})


@pytest.fixture(scope="module")
def trained():
    from tfrec.data.pipeline import dataset_from_dataframe

    schema, df = _data()
    keras.utils.set_random_seed(0)
    model = build_model(schema, _config(history_encoder="sequence", share_item_ids=True), df)
    model.build()
    start = [w.numpy().copy() for w in model.trainable_weights]
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    # pyproject makes "Gradients do not exist" an error: every weight gets a gradient.
    model.fit(dataset_from_dataframe(df, schema, batch_size=32, seed=0, drop_remainder=True), epochs=1, verbose=0)
    return schema, df, model, start


def _features(schema, df):
    from tfrec.data.pipeline import to_tensors

    return {k: tf.constant(v) for k, v in to_tensors(df.head(8), schema, labels=False)[0].items()}


def test_history_items_and_candidates_share_one_vector(trained):
    schema, df, model, start = trained
    users, items = model.query_tower.user_encoder, model.item_tower.item_encoder
    assert isinstance(users.history_encoder, SequenceEncoder)
    assert users.history_embedding is items.id_embedding
    assert users.history_embedding.embedding.embeddings is items.id_embedding.embedding.embeddings
    table = items.id_embedding.embedding.embeddings
    assert sum(w is table for w in model.trainable_weights) == 1
    x = tf.constant([str(df[schema.item_id].iloc[0])])
    np.testing.assert_array_equal(users.history_embedding(x).numpy(), items.id_embedding(x).numpy())
    # Training moved every weight, the sequence encoder's included.
    moved = [not np.array_equal(w.numpy(), s) for w, s in zip(model.trainable_weights, start)]
    assert all(moved), [w.path for w, m in zip(model.trainable_weights, moved) if not m]


def test_without_sharing_the_history_has_its_own_table():
    schema, df = _data()
    model = build_model(schema, _config(), df)
    users, items = model.query_tower.user_encoder, model.item_tower.item_encoder
    assert users.history_encoder is None and users.history_embedding is not items.id_embedding


def test_model_save_load_round_trip_keeps_the_sharing(trained, tmp_path):
    schema, df, model, _ = trained
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.query_tower.user_encoder.history_embedding is loaded.item_tower.item_encoder.id_embedding
    assert len(loaded.trainable_weights) == len(model.trainable_weights)
    features = _features(schema, df)
    before, after = model(features), loaded(features)
    for key in before:
        np.testing.assert_allclose(after[key].numpy(), before[key].numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"history_encoder": "gru"}, r"model\.history_encoder: unknown 'gru'; one of 'mean', 'sequence'"),
        ({"history_layers": 0}, r"model\.history_layers: must be >= 1"),
        ({"share_item_ids": "yes"}, r"model\.share_item_ids: expected true or false"),
        ({"history_encoder": "sequence", "id_embedding_dim": 4, "history_heads": 8}, r"model\.history_heads \(8\)"),
    ],
)
def test_config_validation_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)
    assert ModelConfig().history_encoder == "mean" and ModelConfig().share_item_ids is False
    assert ModelConfig.from_dict({"history_encoder": "sequence"}).history_encoder == "sequence"


def test_saved_model_export_has_only_stock_ops_and_scores_as_in_process(trained, tmp_path):
    import tensorflow_text  # noqa: F401  (the SavedModel loads with the TF Text ops, as tfrec serves it)

    from tfrec.export import export_model
    from tfrec.export.ops import disallowed_ops
    from tfrec.export.saved_model import example_inputs, user_signature
    from tfrec.models.inference import encode_queries

    schema, df, model, _ = trained
    catalog = df.drop_duplicates(schema.item_id)
    result = export_model(model, str(tmp_path), catalog=catalog, examples=df.head(4), max_k=5, verbose=False)
    assert disallowed_ops(result.path) == []
    rows = df.head(16)
    name, output = user_signature(schema)
    signature = tf.saved_model.load(result.path).signatures[name]
    served = signature(**{k: tf.constant(v) for k, v in example_inputs(model, rows)[name].items()})
    np.testing.assert_allclose(served[output].numpy(), encode_queries(model, rows), atol=1e-5)
