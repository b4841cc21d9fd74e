import math

import numpy as np
import pytest
import tensorflow as tf

from tfrec.losses.retrieval import InBatchSoftmaxRetrievalLoss
from tfrec.losses.ziln import ZeroInflatedLognormalLoss, ziln_expected_value, ziln_loss_per_example, ziln_probability


def softplus(x):
    return math.log1p(math.exp(x))


def test_ziln_loss_hand_computed():
    logits = np.array([[0.3, 1.2, 0.5], [-0.4, 2.0, -1.0]], np.float32)
    labels = np.array([0.0, 5.0], np.float32)
    got = ziln_loss_per_example(labels, logits).numpy()
    # Zero label: only the classification part, -log(1 - sigmoid(0.3)).
    expected0 = math.log1p(math.exp(0.3))
    # Positive label: -log(sigmoid(-0.4)) - log LogNormal(5; mu=2, sigma=softplus(-1)).
    sigma = softplus(-1.0)
    log_pdf = (
        -math.log(5.0) - math.log(sigma) - 0.5 * math.log(2 * math.pi) - (math.log(5.0) - 2.0) ** 2 / (2 * sigma**2)
    )
    expected1 = math.log1p(math.exp(0.4)) - log_pdf
    np.testing.assert_allclose(got, [expected0, expected1], rtol=1e-5)
    mean = ZeroInflatedLognormalLoss()(labels[:, None], logits).numpy()
    assert mean == pytest.approx((expected0 + expected1) / 2, rel=1e-5)


def test_ziln_predictions():
    logits = np.array([[0.0, 1.0, 0.0]], np.float32)
    sigma = softplus(0.0)
    assert ziln_probability(logits).numpy()[0] == pytest.approx(0.5)
    assert ziln_expected_value(logits).numpy()[0] == pytest.approx(0.5 * math.exp(1.0 + sigma**2 / 2), rel=1e-5)


def test_ziln_gradient_moves_toward_label():
    logits = tf.Variable([[0.0, 0.0, 0.0]])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(ziln_loss_per_example(tf.constant([20.0]), logits))
    grad = tape.gradient(loss, logits).numpy()[0]
    assert grad[0] < 0  # raise P(value > 0)
    assert grad[1] < 0  # raise mu toward log(20)


def test_in_batch_softmax_hand_computed():
    q = tf.constant([[1.0, 0.0], [0.0, 1.0]])
    i = tf.constant([[1.0, 0.0], [0.6, 0.8]])
    layer = InBatchSoftmaxRetrievalLoss(temperature=1.0, remove_accidental_hits=False, logq_correction=False)
    got = float(layer(q, i))
    # Row 0 logits [1, 0.6] target 0; row 1 logits [0, 0.8] target 1.
    l0 = -math.log(math.exp(1) / (math.exp(1) + math.exp(0.6)))
    l1 = -math.log(math.exp(0.8) / (math.exp(0) + math.exp(0.8)))
    assert got == pytest.approx((l0 + l1) / 2, rel=1e-5)
    # Weights select the positive rows.
    assert float(layer(q, i, weights=tf.constant([1.0, 0.0]))) == pytest.approx(l0, rel=1e-5)


def test_accidental_hits_and_logq():
    q = tf.constant([[1.0, 0.0], [1.0, 0.0]])
    i = tf.constant([[1.0, 0.0], [1.0, 0.0]])  # the same item twice
    ids = tf.constant([7, 7])
    plain = InBatchSoftmaxRetrievalLoss(temperature=1.0, remove_accidental_hits=False, logq_correction=False)
    fixed = InBatchSoftmaxRetrievalLoss(temperature=1.0, remove_accidental_hits=True, logq_correction=False)
    assert float(plain(q, i, ids)) == pytest.approx(math.log(2), rel=1e-5)
    assert float(fixed(q, i, ids)) == pytest.approx(0.0, abs=1e-5)  # the duplicate is not a negative
    logq = InBatchSoftmaxRetrievalLoss(temperature=1.0, remove_accidental_hits=False, logq_correction=True)
    q2 = tf.constant([[1.0, 0.0]] * 2)
    i2 = tf.constant([[1.0, 0.0], [1.0, 0.0]])
    prob = tf.constant([0.5, 0.25])
    # logits - log(prob): row 0 [1 - log .5, 1 - log .25], target 0.
    a, b = 1 - math.log(0.5), 1 - math.log(0.25)
    l0 = -(a - math.log(math.exp(a) + math.exp(b)))
    l1 = -(b - math.log(math.exp(a) + math.exp(b)))
    assert float(logq(q2, i2, tf.constant([1, 2]), prob)) == pytest.approx((l0 + l1) / 2, rel=1e-5)


def test_hard_negative_mining_keeps_hardest():
    q = tf.constant([[1.0, 0.0, 0.0]] * 3)
    i = tf.constant([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 0.0, 1.0]])
    layer = InBatchSoftmaxRetrievalLoss(
        temperature=1.0, remove_accidental_hits=False, logq_correction=False, num_hard_negatives=1
    )
    logits, labels = layer.logits_and_labels(q, i)
    assert logits.shape == (3, 2)
    # Row 0 keeps its positive (1.0) and its hardest negative (0.9).
    assert sorted(logits.numpy()[0].tolist()) == pytest.approx([0.9, 1.0])
    assert labels.numpy().sum(axis=1).tolist() == [1.0, 1.0, 1.0]


def test_get_config_round_trip():
    layer = InBatchSoftmaxRetrievalLoss(temperature=0.1, num_hard_negatives=5)
    clone = InBatchSoftmaxRetrievalLoss.from_config(layer.get_config())
    assert clone.temperature == 0.1 and clone.num_hard_negatives == 5
