"""Per-row sample weights: the `sample_weight` and `propensity` roles, the pipeline, every task loss, the model."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tfrec.data.pipeline import dataset_from_dataframe, feature_spec, label_spec, to_tensors
from tfrec.data.validation import REASON_COLUMN, validate
from tfrec.losses.retrieval import InBatchSoftmaxRetrievalLoss
from tfrec.losses.weighting import weighted_mean
from tfrec.models.config import ModelConfig
from tfrec.models.task_model import MIN_PROPENSITY, TaskModel
from tfrec.schema import FeatureSchema, Kind, Role
from tfrec.tasks.ctr import CtrTask
from tfrec.tasks.relevance import RelevanceTask
from tfrec.tasks.retrieval import RetrievalTask
from tfrec.tasks.user_value import UserValueTask

SCHEMA = FeatureSchema(
    query_text="query",
    item_id="item",
    click_label="click",
    relevance_label="grade",
    relevance_range=(0, 3),
    sample_weight="w",
    propensity="p",
)


def frame(w=(1.0, 2.0, 0.0, 0.5), p=(0.5, 1.0, 0.25, 0.1)):
    n = len(w)
    return pd.DataFrame(
        {
            "query": ["red shoes"] * n,
            "item": [f"i{i}" for i in range(n)],
            "click": [1, 0, 1, 0][:n],
            "grade": [3, 0, 2, 1][:n],
            "w": list(w),
            "p": list(p),
        }
    )


def rng_values(seed, n):
    rng = np.random.default_rng(seed)
    return rng.normal(size=n).astype("float32"), rng


# ----------------------------------------------------------------- schema
def test_roles_kinds_and_yaml_round_trip():
    assert Role("sample_weight") is Role.SAMPLE_WEIGHT and Role("propensity") is Role.PROPENSITY
    kinds = {c.name: c.kind for c in SCHEMA.columns()}
    assert kinds["w"] == Kind.WEIGHT and kinds["p"] == Kind.PROPENSITY
    assert not any(c.nullable for c in SCHEMA.columns() if c.name in ("w", "p"))
    assert SCHEMA.weight_names == ["w", "p"]
    assert "w" not in SCHEMA.feature_names and "p" not in SCHEMA.feature_names
    assert FeatureSchema.from_yaml(SCHEMA.to_yaml()) == SCHEMA
    assert SCHEMA.restrict(["query", "item", "click"]).sample_weight is None


# ------------------------------------------------------------- validation
def test_validation_rejects_bad_weights_naming_the_column():
    df = frame(w=(1.0, -1.0, np.nan, np.inf), p=(0.5, 0.5, 0.5, 0.5))
    report = validate(df, SCHEMA)
    assert report.rows_used == 1 and report.valid["w"].tolist() == [1.0]
    assert list(report.rejected[REASON_COLUMN]) == ["w: negative value", "w: null in required field", "w: not finite"]
    assert report.rows_read == report.rows_used + report.rows_rejected


def test_validation_rejects_propensity_outside_zero_one_naming_the_column():
    df = frame(w=(1.0, 1.0, 1.0, 0.0), p=(0.0, 1.5, -0.2, 1.0))
    report = validate(df, SCHEMA)
    assert report.valid["p"].tolist() == [1.0] and report.valid["w"].tolist() == [0.0]  # weight 0 is valid
    assert set(report.rejected[REASON_COLUMN]) == {"p: propensity out of range"}
    issue = next(i for i in report.issues if i.column == "p")
    assert issue.rows == 3 and "(0, 1]" in str(issue) and "'p'" in str(issue)


# --------------------------------------------------------------- pipeline
def test_pipeline_yields_the_weights_with_the_labels_not_as_features():
    assert set(label_spec(SCHEMA)) == {"click", "relevance", "sample_weight", "propensity"}
    assert set(feature_spec(SCHEMA)) == {"query", "item"}
    x, y = next(iter(dataset_from_dataframe(frame(), SCHEMA, batch_size=4, shuffle=False)))
    assert set(x) == {"query", "item"}
    np.testing.assert_array_equal(y["sample_weight"].numpy(), [1.0, 2.0, 0.0, 0.5])
    np.testing.assert_array_equal(y["propensity"].numpy(), np.float32([0.5, 1.0, 0.25, 0.1]))
    assert y["sample_weight"].dtype == tf.float32
    _, labels = to_tensors(validate(frame(), SCHEMA).valid, SCHEMA, labels=False)
    assert labels == {}


def test_pipeline_without_the_roles_is_unchanged():
    plain = FeatureSchema(query_text="query", item_id="item", click_label="click")
    x, y = next(iter(dataset_from_dataframe(frame(), plain, batch_size=4, shuffle=False)))
    assert set(x) == {"query", "item"} and set(y) == {"click"}


# ------------------------------------------------------------- reduction
def test_weighted_mean_without_weight_is_todays_reduction_exactly():
    per_row, _ = rng_values(0, 37)
    per_row = tf.constant(per_row)
    ones = tf.ones([37])
    assert weighted_mean(per_row).numpy() == tf.reduce_mean(per_row).numpy()
    assert weighted_mean(per_row, ones).numpy() == tf.reduce_mean(per_row).numpy()
    mask = tf.constant(np.arange(37) % 3 == 0)
    assert weighted_mean(per_row, ones, mask).numpy() == weighted_mean(per_row, None, mask).numpy()
    assert weighted_mean(per_row, tf.zeros([37])).numpy() == 0.0  # no weight at all: loss 0, not NaN


# ---------------------------------------------------------- pointwise tasks
def ctr_case(n=6, seed=1):
    logits, rng = rng_values(seed, n)
    labels = {"click": tf.constant(rng.integers(0, 2, n), tf.float32)}
    return CtrTask(), labels, {"ctr_logit": tf.constant(logits)}


def relevance_case(n=6, seed=2):
    pred, rng = rng_values(seed, n)
    labels = {"relevance": tf.constant(rng.uniform(0, 3, n), tf.float32)}
    return RelevanceTask(relevance_range=(0, 3)), labels, {"relevance": tf.constant(1.5 + pred)}


def value_case(n=6, seed=3, value_loss="ziln"):
    _, rng = rng_values(seed, n)
    value = rng.lognormal(1.0, 0.5, n) * (rng.uniform(size=n) < 0.6)
    value[1] = np.nan  # withheld: masked out of the loss
    logits = rng.normal(size=(n, 3)).astype("float32")
    outputs = {"value_logits": tf.constant(logits), "user_value": tf.constant(logits[:, 1])}
    return UserValueTask(value_loss=value_loss), {"value": tf.constant(value, tf.float32)}, outputs


POINTWISE = {
    "ctr": ctr_case,
    "relevance": relevance_case,
    "value_ziln": value_case,
    "value_mse": lambda: value_case(value_loss="mse"),
    "value_huber": lambda: value_case(value_loss="huber"),
}


def take(d, rows):
    return {k: tf.gather(v, rows) for k, v in d.items()}


def with_weight(labels, weight):
    return {**labels, "sample_weight": tf.constant(weight, tf.float32)}


@pytest.mark.parametrize("case", sorted(POINTWISE))
def test_pointwise_no_weight_equals_weight_one_exactly(case):
    task, labels, outputs = POINTWISE[case]()
    plain = task.compute_loss(labels, outputs, {}).numpy()
    assert task.compute_loss(with_weight(labels, np.ones(6)), outputs, {}).numpy() == plain


@pytest.mark.parametrize("case", sorted(POINTWISE))
def test_pointwise_weight_zero_is_dropping_the_rows(case):
    task, labels, outputs = POINTWISE[case]()
    keep = [0, 1, 3, 5]
    weighted = task.compute_loss(with_weight(labels, [1, 1, 0, 1, 0, 1]), outputs, {})
    dropped = task.compute_loss(take(labels, keep), take(outputs, keep), {})
    np.testing.assert_allclose(weighted.numpy(), dropped.numpy(), rtol=1e-6)


@pytest.mark.parametrize("case", sorted(POINTWISE))
def test_pointwise_weight_two_is_duplicating_the_row(case):
    task, labels, outputs = POINTWISE[case]()
    rows = [0, 1, 2, 3, 4, 5, 4]  # row 4 twice
    weighted = task.compute_loss(with_weight(labels, [1, 1, 1, 1, 2, 1]), outputs, {})
    duplicated = task.compute_loss(take(labels, rows), take(outputs, rows), {})
    np.testing.assert_allclose(weighted.numpy(), duplicated.numpy(), rtol=1e-6)


# --------------------------------------------------------------- retrieval
def retrieval_inputs(n=6, seed=4):
    rng = np.random.default_rng(seed)
    q = tf.math.l2_normalize(tf.constant(rng.normal(size=(n, 8)), tf.float32), axis=-1)
    i = tf.math.l2_normalize(tf.constant(rng.normal(size=(n, 8)), tf.float32), axis=-1)
    ids = tf.constant([0, 1, 2, 3, 3, 5])  # an accidental hit too
    prob = tf.constant(rng.uniform(0.05, 0.3, n), tf.float32)
    return q, i, ids, prob


@pytest.mark.parametrize("positives", [None, [1, 1, 0, 1, 1, 1]])
def test_retrieval_no_weight_equals_weight_one_exactly(positives):
    q, i, ids, prob = retrieval_inputs()
    loss = InBatchSoftmaxRetrievalLoss(temperature=0.1)
    positives = None if positives is None else tf.constant(positives, tf.float32)
    plain = loss(q, i, ids, prob, positives).numpy()
    assert loss(q, i, ids, prob, positives, sample_weight=tf.ones([6])).numpy() == plain


def test_retrieval_weight_zero_row_leaves_the_others_loss_and_gradients():
    q, i, ids, prob = retrieval_inputs()
    loss = InBatchSoftmaxRetrievalLoss(temperature=0.1)
    others = [0, 1, 3, 4, 5]
    weight = tf.constant([1.0, 1.0, 0.0, 1.0, 1.0, 1.0])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(q)
        weighted = loss(q, i, ids, prob, sample_weight=weight)
        logits, labels = loss.logits_and_labels(q, i, ids, prob)
        per_row = tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits)
        reference = tf.reduce_mean(tf.gather(per_row, others))  # row 2's item stays a negative
    np.testing.assert_allclose(weighted.numpy(), reference.numpy(), rtol=1e-6)
    g_weighted, g_reference = tape.gradient(weighted, q), tape.gradient(reference, q)
    np.testing.assert_allclose(g_weighted.numpy(), g_reference.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(g_weighted.numpy()[2], np.zeros(8))


def test_retrieval_task_reads_the_weight_and_the_positives():
    q, i, ids, _ = retrieval_inputs()
    task = RetrievalTask(item_sampling_probability=np.full(6, 1 / 6), temperature=0.1)
    outputs = {"query_embedding": q, "item_embedding": i, "item_index": ids}
    clicks = {"click": tf.constant([1.0, 1.0, 0.0, 1.0, 1.0, 1.0])}
    plain = task.compute_loss(clicks, outputs, None).numpy()
    assert task.compute_loss(with_weight(clicks, np.ones(6)), outputs, None).numpy() == plain
    # Weight 0 on a positive row is the same as that row not being a positive.
    no_click_0 = {"click": tf.constant([0.0, 1.0, 0.0, 1.0, 1.0, 1.0])}
    np.testing.assert_allclose(
        task.compute_loss(with_weight(clicks, [0, 1, 1, 1, 1, 1]), outputs, None).numpy(),
        task.compute_loss(no_click_0, outputs, None).numpy(),
        rtol=1e-6,
    )


# ------------------------------------------------------------------ model
def test_inverse_propensity_weight_is_clipped_and_needs_the_column():
    config = ModelConfig(use_text=False, weight_by_inverse_propensity=True)
    model = TaskModel(SCHEMA, config)
    y = {
        "click": tf.zeros([3]),
        "sample_weight": tf.constant([1.0, 2.0, 1.0]),
        "propensity": tf.constant([0.5, 1.0, 1e-4]),
    }
    out = model.loss_labels(y)
    np.testing.assert_allclose(out["sample_weight"].numpy(), [2.0, 2.0, 1 / MIN_PROPENSITY], rtol=1e-6)
    without = {k: v for k, v in y.items() if k != "sample_weight"}
    np.testing.assert_allclose(model.loss_labels(without)["sample_weight"].numpy(), [2.0, 1.0, 100.0], rtol=1e-6)
    off = TaskModel(SCHEMA, ModelConfig(use_text=False))
    assert off.loss_labels(y) is y  # the flag off: the propensity is not used
    with pytest.raises(ValueError, match="weight_by_inverse_propensity.*'propensity' column"):
        TaskModel(FeatureSchema(query_text="query", item_id="item"), config)
    with pytest.raises(ValueError, match="model.weight_by_inverse_propensity"):
        ModelConfig(weight_by_inverse_propensity="yes")
    with pytest.raises(ValueError, match="sample_weight must be one"):
        off.loss_labels(y, sample_weight={"click": tf.ones([3])})


def test_tiny_model_weights_in_fit_and_in_the_trainer_loss_path():
    import keras

    from tfrec.data.simulator import SimulatorConfig, simulate
    from tfrec.models import build_model
    from tfrec.training.epoch_data import EpochBatches

    sim = simulate(SimulatorConfig(num_users=60, num_items=30, num_sessions=40, seed=1))
    schema = sim.schema()
    schema.sample_weight, schema.propensity = "w", "propensity"
    raw = sim.impressions.assign(w=np.random.default_rng(0).integers(0, 3, len(sim.impressions)).astype(float))
    df = validate(raw, schema).valid
    keras.utils.set_random_seed(0)
    config = ModelConfig(
        use_text=False, embedding_dim=8, id_embedding_dim=4, tower_units=[8], expert_units=[8], cross_layers=0
    )
    model = build_model(schema, config, df)
    # The Trainer's batches carry the weights in y; its loss path is `weighted_losses(x, y, y_pred)`.
    x, y = next(iter(EpochBatches.from_dataframe(df, schema, 32, shuffle=False).dataset()))
    np.testing.assert_array_equal(y["sample_weight"].numpy(), df["w"].to_numpy(np.float32)[:32])
    pred = model(x, training=False)
    _, weighted = model.weighted_losses(x, y, pred)
    keep = np.flatnonzero(y["sample_weight"].numpy() > 0)
    plain = {k: v for k, v in y.items() if k != "sample_weight"}
    duplicated = np.repeat(keep, y["sample_weight"].numpy()[keep].astype(int))
    dx = {k: tf.gather(v, duplicated) for k, v in x.items()}
    _, reference = model.weighted_losses(dx, take(plain, duplicated), model(dx, training=False))
    for task in ("ctr", "relevance", "value"):
        np.testing.assert_allclose(weighted[task].numpy(), reference[task].numpy(), rtol=1e-5, err_msg=task)
    # Keras fit: one step through `compute_loss`, the same path.
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(dataset_from_dataframe(df, schema, batch_size=32, drop_remainder=True).take(2), verbose=0)
    assert np.isfinite(history.history["loss"][0])
