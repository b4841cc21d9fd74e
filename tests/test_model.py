import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrec.data.pipeline import dataset_from_dataframe
from tfrec.data.simulator import SimulatorConfig, simulate
from tfrec.data.validation import validate
from tfrec.models import ModelConfig, TextConfig, TwoTowerModel, build_model
from tfrec.models.inference import encode_items, encode_queries, predict_dataframe, predict_user_value

SMALL_TEXT = TextConfig(
    vocabulary_size=300, hidden_dim=16, num_layers=1, num_heads=2, query_sequence_length=6, item_sequence_length=8
)


@pytest.fixture(scope="module")
def data():
    sim = simulate(SimulatorConfig(num_users=300, num_items=150, num_sessions=400, seed=3))
    df = validate(sim.impressions, sim.schema()).valid
    return sim, df


def small_config(**kw):
    base = dict(embedding_dim=16, id_embedding_dim=8, tower_units=[32], expert_units=[16], text=SMALL_TEXT)
    base.update(kw)
    return ModelConfig(**base)


def fit_briefly(model, df, schema, steps=6):
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    ds = dataset_from_dataframe(df, schema, batch_size=64, seed=0, drop_remainder=True).take(steps)
    return model.fit(ds, epochs=1, verbose=0)


@pytest.fixture(scope="module")
def trained(data):
    sim, df = data
    keras.utils.set_random_seed(0)
    model = build_model(sim.schema(), small_config(), df)
    history = fit_briefly(model, df, sim.schema())
    return model, history


def test_fit_reports_every_task(trained):
    _, history = trained
    for key in ("loss", "retrieval_loss", "ctr_loss", "value_loss", "relevance_loss", "ctr_auc"):
        assert key in history.history and np.isfinite(history.history[key][0]), key


def test_training_lowers_the_loss(data):
    sim, df = data
    keras.utils.set_random_seed(1)
    model = build_model(sim.schema(), small_config(), df)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    ds = dataset_from_dataframe(df, sim.schema(), batch_size=128, seed=0, drop_remainder=True)
    before = model.evaluate(ds, return_dict=True, verbose=0)["loss"]
    model.fit(ds, epochs=3, verbose=0)
    after = model.evaluate(ds, return_dict=True, verbose=0)["loss"]
    assert after < before - 0.5


def test_outputs_shapes_and_ranges(trained, data):
    model, _ = trained
    sim, df = data
    out = predict_dataframe(model, df.head(50))
    assert out["query_embedding"].shape == (50, 16) and out["item_embedding"].shape == (50, 16)
    np.testing.assert_allclose(np.linalg.norm(out["query_embedding"], axis=1), 1.0, rtol=1e-5)
    assert ((out["ctr"] > 0) & (out["ctr"] < 1)).all()
    assert ((out["relevance"] >= 0) & (out["relevance"] <= 3)).all()
    assert (out["user_value"] >= 0).all() and ((out["value_probability"] >= 0) & (out["value_probability"] <= 1)).all()
    np.testing.assert_allclose(out["score"], (out["query_embedding"] * out["item_embedding"]).sum(1), rtol=1e-5)
    # The towers alone give the same embeddings as the full model.
    np.testing.assert_allclose(encode_queries(model, df.head(50)), out["query_embedding"], atol=1e-5)
    np.testing.assert_allclose(encode_items(model, df.head(50)), out["item_embedding"], atol=1e-5)
    np.testing.assert_allclose(predict_user_value(model, df.head(50))["user_value"], out["user_value"], rtol=1e-4)


def test_unseen_ids_and_categories_score_without_error(trained, data):
    model, _ = trained
    _, df = data
    rows = df.head(4).copy()
    rows["user_id"] = ["new-user-1", "new-user-2", "u-999999", "u?"]
    rows["item_id"] = ["brand-new-item"] * 4
    rows["item_brand"] = ["unknown-brand"] * 4
    rows["user_history"] = [["never-seen-item"], [], ["x", "y"], []]
    out = predict_dataframe(model, rows)
    assert np.isfinite(out["ctr"]).all() and np.isfinite(out["query_embedding"]).all()


def test_position_changes_ctr_only(trained, data):
    model, _ = trained
    _, df = data
    rows = df.head(8)
    at_logged = predict_dataframe(model, rows)
    without = predict_dataframe(model, rows.drop(columns=["position"]))
    at_one = predict_dataframe(model, rows.assign(position=1.0))
    np.testing.assert_allclose(without["ctr"], at_one["ctr"], rtol=1e-6)  # no position = position 1
    np.testing.assert_allclose(without["score"], at_logged["score"], rtol=1e-6)


def test_keras_save_load_round_trip_is_identical(trained, data, tmp_path):
    model, _ = trained
    _, df = data
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, TwoTowerModel)
    a = predict_dataframe(model, df.head(64))
    b = predict_dataframe(loaded, df.head(64))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    clone = TwoTowerModel.from_config(model.get_config())
    assert clone.config == model.config and clone.schema == model.schema


@pytest.mark.parametrize(
    "kw",
    [
        dict(multitask="mmoe", value_loss="mse"),
        dict(multitask="ple", value_loss="huber", num_hard_negatives=8),
        dict(use_text=False),
        dict(
            text=TextConfig(
                vocabulary_size=300,
                hidden_dim=16,
                num_layers=1,
                num_heads=2,
                query_sequence_length=6,
                item_sequence_length=8,
                item_text="bag_of_words",
            )
        ),
    ],
)
def test_configurations_train(data, kw):
    sim, df = data
    model = build_model(sim.schema(), small_config(**kw), df)
    history = fit_briefly(model, df, sim.schema(), steps=3)
    assert np.isfinite(history.history["loss"][0])
    if kw.get("use_text") is False:
        assert model.text_encoder is None
    if "text" in kw:
        assert model.item_tower.title_encoder is not None and model.item_tower.text_encoder is None


def test_schema_without_labels_of_some_tasks(data):
    sim, df = data
    schema = sim.schema()
    schema.value_label = None
    schema.relevance_label = None
    model = build_model(schema, small_config(), df)
    history = fit_briefly(model, df, schema, steps=2)
    assert "value_loss" not in history.history and "relevance_loss" not in history.history
    assert "relevance" not in predict_dataframe(model, df.head(3))


def _fit_without_gradient_warnings(model, df, schema, steps=2):
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = fit_briefly(model, df, schema, steps=steps)
    missing = [str(w.message) for w in caught if "Gradients do not exist" in str(w.message)]
    assert not missing, missing
    return history


@pytest.mark.parametrize("shape", ["search_without_clicks", "clicks_only", "transactions"])
def test_each_data_shape_builds_only_its_tasks(data, shape):
    """A model has exactly the tasks its labels support, and every weight it has gets a gradient."""
    from tfrec.models import UserValueModel

    sim, df = data
    schema = sim.schema()
    if shape == "search_without_clicks":
        schema.click_label = None
        schema.value_label = None
        expected, absent = {"retrieval", "relevance"}, {"ctr", "value_logits", "user_value"}
    elif shape == "clicks_only":
        schema.relevance_label = None
        schema.value_label = None
        expected, absent = {"retrieval", "ctr", "intent"}, {"relevance", "user_value"}
    else:  # one row per customer: user features and a value label, no item side
        for role in (
            "item_id",
            "item_text",
            "item_price",
            "query_text",
            "click_label",
            "relevance_label",
            "position",
            "user_history",
        ):
            setattr(schema, role, None)
        schema.item_categorical, schema.item_numeric = [], []
        df = df.drop_duplicates(schema.user_id)
        expected, absent = {"value"}, {"score", "ctr", "item_embedding"}
    model = build_model(schema, small_config(), df)
    assert set(model.task_names) == expected
    _fit_without_gradient_warnings(model, df, schema)
    out = predict_dataframe(model, df.head(3))
    assert not absent & set(out), sorted(absent & set(out))
    if shape == "transactions":
        assert isinstance(model, UserValueModel) and out["user_value"].shape == (3,)
    else:
        assert model.ctr_task is None if "ctr" not in expected else model.ctr_task is not None


def test_value_labels_given_as_nan_are_skipped(data):
    sim, df = data
    model = build_model(sim.schema(), small_config(), df)
    from tfrec.data.pipeline import to_tensors

    features = {k: tf.constant(v) for k, v in to_tensors(df.head(4), sim.schema())[0].items()}
    y_pred = model(features)
    losses = model.task_losses(features, {"value": tf.constant([np.nan] * 4)}, y_pred)
    assert float(losses["value"]) == 0.0


def test_task_losses_match_hand_computation(trained, data):
    from tfrec.data.pipeline import to_tensors
    from tfrec.losses.ziln import ziln_loss_per_example

    model, _ = trained
    sim, df = data
    rows = df.head(32)
    features, labels = to_tensors(rows, sim.schema())
    features = {k: tf.constant(v) for k, v in features.items()}
    labels = {k: tf.constant(v) for k, v in labels.items()}
    y_pred = model(features)
    losses = model.task_losses(features, labels, y_pred)
    p = np.clip(y_pred["ctr"].numpy().astype(np.float64), 1e-12, 1 - 1e-12)
    y = labels["click"].numpy()
    np.testing.assert_allclose(float(losses["ctr"]), -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), rtol=1e-4)
    rel = y_pred["relevance"].numpy() - labels["relevance"].numpy()
    np.testing.assert_allclose(float(losses["relevance"]), np.mean(rel**2), rtol=1e-5)
    np.testing.assert_allclose(
        float(losses["value"]),
        np.mean(ziln_loss_per_example(labels["value"], y_pred["value_logits"]).numpy()),
        rtol=1e-5,
    )
    # Retrieval: in-batch softmax over the batch's items, clicked rows as positives.
    q, i = y_pred["query_embedding"].numpy(), y_pred["item_embedding"].numpy()
    logits = q @ i.T / model.config.temperature
    ids = rows.item_id.to_numpy()
    logits = np.where((ids[:, None] == ids[None, :]) & ~np.eye(len(ids), dtype=bool), -1e9, logits)
    index = model.item_tower.item_index(features).numpy()
    prob = model.retrieval_task.item_sampling_probability.numpy()
    logits = logits - np.log(np.clip(prob[index], 1e-6, 1))[None, :]
    logits = logits - logits.max(axis=1, keepdims=True)
    per_row = -(np.diag(logits) - np.log(np.exp(logits).sum(axis=1)))
    expected = (per_row * y).sum() / max(y.sum(), 1)
    np.testing.assert_allclose(float(losses["retrieval"]), expected, rtol=1e-4)
    # Total loss = weighted sum.
    weights = model.config.loss_weights
    total = float(model.compute_loss(features, labels, y_pred))
    assert total == pytest.approx(sum(weights[k] * float(v) for k, v in losses.items()), rel=1e-5)


def test_keras_predict_and_evaluate_on_datasets(trained, data):
    model, _ = trained
    sim, df = data
    ds = dataset_from_dataframe(df.head(100), sim.schema(), batch_size=50, shuffle=False)
    out = model.predict(ds.map(lambda f, l: f), verbose=0)
    assert out["ctr"].shape == (100,)
    np.testing.assert_allclose(out["ctr"], predict_dataframe(model, df.head(100))["ctr"], rtol=1e-5)
    result = model.evaluate(ds, return_dict=True, verbose=0)
    assert {"loss", "ctr_auc", "retrieval_loss"} <= set(result)
