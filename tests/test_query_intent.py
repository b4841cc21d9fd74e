"""Query intent: the task's loss and config, the simulator's planted intent, accuracy against it, the signatures."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrec.data.simulator import SimulatorConfig, simulate
from tfrec.tasks import QueryIntentTask

VOCABULARY = ["a", "b", "c"]


def _log_softmax(logits):
    logits = np.asarray(logits, np.float64)
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


# ------------------------------------------------------------------ the task


def test_loss_is_cross_entropy_of_clicked_rows_only():
    task = QueryIntentTask(VOCABULARY, category_column="cat")
    logits = tf.constant([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 1.0, 1.0], [0.5, -1.0, 2.0]])
    features = {"cat": tf.constant(["a", "b", "zz", "c", "c"])}
    # Row 0: clicked, "a"; row 1: no click; row 2: a category outside the vocabulary; row 3: click withheld (NaN).
    labels = {"click": tf.constant([1.0, 0.0, 1.0, np.nan, 1.0])}
    loss = float(task.compute_loss(labels, {"intent_logits": logits}, features))
    expected = -(_log_softmax(logits[0])[0] + _log_softmax(logits[4])[2]) / 2
    assert loss == pytest.approx(expected, rel=1e-6)
    # The unlabelled rows' logits change nothing, and get no gradient.
    moved = tf.Variable(
        logits + tf.constant([[0.0] * 3, [9.0, -9.0, 9.0], [5.0, 5.0, -5.0], [7.0, 0.0, 0.0], [0.0] * 3])
    )
    with tf.GradientTape() as tape:
        again = task.compute_loss(labels, {"intent_logits": moved}, features)
    assert float(again) == pytest.approx(expected, rel=1e-6)
    grad = tape.gradient(again, moved).numpy()
    assert np.all(grad[1:4] == 0) and np.abs(grad[[0, 4]]).sum() > 0
    # No labelled row at all: 0, not NaN.
    none = task.compute_loss({"click": tf.zeros([5])}, {"intent_logits": logits}, features)
    assert float(none) == 0.0


def test_outputs_metrics_and_config_round_trip():
    task = QueryIntentTask(VOCABULARY, category_column="cat", name="intent")
    out = task(tf.random.stateless_normal([4, 6], seed=[0, 1]))
    assert out["intent_probabilities"].shape == (4, 3)
    np.testing.assert_allclose(out["intent_probabilities"].numpy().sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(
        task.category_index({"cat": tf.constant(["c", "a", "", "zz"])}).numpy(), [2, 0, -1, -1]
    )
    probabilities = tf.constant([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.2, 0.5, 0.3]])
    outputs = {"intent_probabilities": probabilities, "intent_label": tf.constant([0, 2, 1, 1])}
    task.update_metrics({"click": tf.constant([1.0, 1.0, 0.0, 1.0])}, outputs)  # row 2 unclicked: not counted
    assert float(task.top1.result()) == pytest.approx(2 / 3) and float(task.top3.result()) == pytest.approx(1.0)
    clone = QueryIntentTask.from_config(task.get_config())
    assert clone.get_config() == task.get_config() and clone.vocabulary == VOCABULARY
    with pytest.raises(ValueError, match="empty"):
        QueryIntentTask([], category_column="cat")


def test_config_picks_disables_and_checks_the_intent_column():
    from tfrec.models import ModelConfig, task_names

    schema = simulate(SimulatorConfig(num_users=20, num_items=20, num_sessions=5, seed=0)).schema()
    assert "intent" in task_names(schema, ModelConfig())
    assert ModelConfig(intent_column="none").intent_column is None
    assert "intent" not in task_names(schema, ModelConfig(intent_column=None))
    assert "intent" not in task_names(schema, ModelConfig(loss_weights={"intent": 0.0}))
    assert "intent" in task_names(schema, ModelConfig(intent_column="item_brand"))
    with pytest.raises(ValueError, match="model.intent_column: 'colour' is not an item categorical column"):
        task_names(schema, ModelConfig(intent_column="colour"))
    schema.click_label = None
    assert "intent" not in task_names(schema, ModelConfig())


# ------------------------------------------------------------------ planted truth


def test_planted_intent_is_a_distribution_led_by_the_query_category():
    sim = simulate(SimulatorConfig(num_users=300, num_items=600, num_sessions=500, seed=1))
    truth = sim.true_query_intent(np.arange(500))
    assert truth.shape == (500, len(sim.intent_categories))
    np.testing.assert_allclose(truth.sum(axis=1), 1.0)
    assert (truth >= 0).all()
    assert np.mean(truth.argmax(axis=1) == sim.truth["session_category"]) > 0.9
    # By hand for one session: the category mix of sigmoid(true click logits) over the catalog.
    p = 1 / (1 + np.exp(-sim.true_click_logits([7])[0]))
    mix = np.array([p[(sim.items.item_category == c).to_numpy()].sum() for c in sim.intent_categories])
    np.testing.assert_allclose(truth[7], mix / mix.sum())


# ------------------------------------------------------------------ trained against the truth


@pytest.fixture(scope="module")
def trained():
    """A small model trained for a few hundred steps on a small simulation: (sim, split, model)."""
    from tfrec.data.pipeline import dataset_from_dataframe
    from tfrec.data.split import time_split
    from tfrec.data.validation import validate
    from tfrec.models import ModelConfig, TextConfig, build_model

    sim = simulate(SimulatorConfig(num_users=500, num_items=400, num_sessions=6000, seed=5))
    schema = sim.schema()
    split = time_split(validate(sim.impressions, schema).valid, schema, valid_fraction=0.0, test_fraction=0.2)
    keras.utils.set_random_seed(0)
    text = TextConfig(
        vocabulary_size=300, hidden_dim=16, num_layers=1, num_heads=2, query_sequence_length=6, item_sequence_length=8
    )
    config = ModelConfig(
        embedding_dim=16,
        id_embedding_dim=8,
        tower_units=[32],
        expert_units=[16],
        text=text,
        loss_weights={"intent": 1.0},
    )
    model = build_model(schema, config, split.train)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    ds = dataset_from_dataframe(split.train, schema, batch_size=256, seed=0, drop_remainder=True)
    model.fit(ds.repeat().take(400), verbose=0)
    return sim, split, model


def test_trained_intent_beats_the_majority_category_against_the_planted_truth(trained):
    from tfrec.evaluation.intent import intent_evaluation
    from tfrec.evaluation.simulated import session_queries

    sim, split, model = trained
    sessions = session_queries(split.test, 400)
    m = intent_evaluation(model, sim, split.train, sessions)
    assert m["queries"] == len(sessions) and m["categories"] == 12
    assert m["model"]["top1"] > m["majority"]["top1"] + 0.3, m
    assert m["model"]["top3"] > m["majority"]["top3"] + 0.2, m
    for scorer in ("model", "majority", "top_retrieved"):
        assert 0 <= m[scorer]["top1"] <= m[scorer]["top3"] <= 1 and 0 <= m[scorer]["total_variation"] <= 1


def test_evaluate_simulated_reports_the_intent_section(small_trained):
    from tfrec.data.split import time_split
    from tfrec.evaluation.report import render_report
    from tfrec.evaluation.simulated import evaluate_simulated
    from tfrec.evaluation.summary import format_summary

    sim, df, model = small_trained
    split = time_split(df, sim.schema(), valid_fraction=0.1, test_fraction=0.15)
    result = evaluate_simulated(model, sim, split, ks=[10], max_queries=100)
    m = result.metrics["intent"]
    assert {"model", "majority", "top_retrieved"} <= set(m) and 0 < m["queries"] <= 100
    html = render_report(result)
    assert "Query intent" in html and "category of the top retrieved item" in html
    assert "Intent top-1 accuracy" in format_summary(result.metrics, [10])


# ------------------------------------------------------------------ export


@pytest.fixture(scope="module")
def exported(small_trained, small_export):
    """The session's small export (`small_trained`'s model: briefly trained, every signature)."""
    import tensorflow_text  # noqa: F401  (the TF Text ops of the tokenizer)

    return tf.saved_model.load(str(small_export / "tfrec" / "1"))


def _call(loaded, name, inputs):
    fn = loaded.signatures[name]
    args = {
        k: tf.constant(v if np.asarray(v).dtype != object else np.asarray(v).astype(str)) for k, v in inputs.items()
    }
    return {k: v.numpy() for k, v in fn(**args).items()}


def test_query_intent_signature_returns_the_top_categories(small_trained, exported):
    from tfrec.export.saved_model import example_inputs, signature_names
    from tfrec.models.inference import predict_intent

    sim, df, model = small_trained
    loaded = exported
    assert {"query_intent", "retrieve_by_intent", "retrieve"} <= set(signature_names(model)) <= set(loaded.signatures)
    rows = df.head(6)
    out = _call(loaded, "query_intent", example_inputs(model, rows)["query_intent"])
    assert out["categories"].shape == (6, 5) and out["probabilities"].shape == (6, 5)
    assert (np.diff(out["probabilities"], axis=1) <= 0).all()
    expected = predict_intent(model, rows)
    order = np.argsort(-expected, axis=1, kind="stable")[:, :5]
    np.testing.assert_allclose(out["probabilities"], np.take_along_axis(expected, order, 1), atol=1e-5)
    names = np.array(model.intent_task.vocabulary, dtype=object)
    assert (out["categories"].astype(str) == names[order]).all()


def test_retrieve_by_intent_filters_and_boosts(small_trained, exported):
    from tfrec.export.saved_model import example_inputs

    sim, df, model = small_trained
    loaded = exported
    rows = df.drop_duplicates("session_id").head(4)
    inputs = example_inputs(model, rows, k=10)
    plain = _call(loaded, "retrieve", inputs["retrieve"])
    same = _call(loaded, "retrieve_by_intent", inputs["retrieve_by_intent"])  # boost 0, no filter
    np.testing.assert_array_equal(same["item_ids"], plain["item_ids"])
    np.testing.assert_allclose(same["scores"], plain["scores"], atol=1e-5)
    category = sim.items.set_index("item_id").item_category
    assert (
        same["categories"].astype(str) == category[same["item_ids"].astype(str).ravel()].to_numpy().reshape(4, 10)
    ).all()

    wanted = np.array([["shoes", ""], ["toys", "books"], ["", ""], ["garden", "nonsense"]], dtype=object)
    filtered = _call(loaded, "retrieve_by_intent", {**inputs["retrieve_by_intent"], "intent_filter": wanted})
    got = filtered["categories"].astype(str)
    np.testing.assert_array_equal(filtered["item_ids"][2], plain["item_ids"][2])  # a row of "" filters nothing
    counts = sim.items.item_category.value_counts()
    for i, listed in ((0, {"shoes"}), (1, {"toys", "books"}), (3, {"garden"})):
        shown = got[i][got[i] != ""]
        assert set(shown) == listed or set(shown) < listed, (i, shown)
        assert len(shown) == min(10, int(counts.reindex(sorted(listed)).fillna(0).sum()))  # as many as there are
        ids = filtered["item_ids"][i].astype(str)[got[i] != ""]
        assert (category[ids].to_numpy() == shown).all()
        assert np.isfinite(filtered["scores"][i][got[i] != ""]).all()

    boosted = _call(
        loaded, "retrieve_by_intent", {**inputs["retrieve_by_intent"], "intent_boost": np.full(4, 50.0, np.float32)}
    )
    top = _call(loaded, "query_intent", inputs["query_intent"])["categories"][:, 0].astype(str)
    # A large boost ranks the predicted top category's items first.
    assert (boosted["categories"][:, 0].astype(str) == top).all()


def test_sample_weights_weigh_the_labelled_rows():
    task = QueryIntentTask(VOCABULARY, category_column="cat")
    logits = tf.constant([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, -1.0, 2.0]])
    features = {"cat": tf.constant(["a", "b", "c"])}
    labels = {"click": tf.constant([1.0, 0.0, 1.0]), "sample_weight": tf.constant([3.0, 5.0, 1.0])}
    loss = float(task.compute_loss(labels, {"intent_logits": logits}, features))
    expected = -(3 * _log_softmax(logits[0])[0] + _log_softmax(logits[2])[2]) / 4  # row 1 unclicked: no weight
    assert loss == pytest.approx(expected, rel=1e-6)
