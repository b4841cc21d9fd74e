import numpy as np
import pytest

from tfrec.evaluation import metrics as M


def test_auc_hand_computed():
    # Pairs (pos, neg): (0.8>0.3)=1, (0.8>0.5)=1, (0.4>0.3)=1, (0.4<0.5)=0 -> 3/4.
    assert M.auc([1, 0, 1, 0], [0.8, 0.3, 0.4, 0.5]) == pytest.approx(0.75)
    assert M.auc([1, 0], [0.5, 0.5]) == pytest.approx(0.5)  # ties count half
    assert np.isnan(M.auc([1, 1], [0.2, 0.3]))


def test_ece_hand_computed():
    y = [1, 0, 0, 1]
    p = [0.05, 0.05, 0.95, 0.95]
    # Two bins, each with rate 0.5: |0.5 - 0.05| and |0.5 - 0.95| -> 0.45.
    assert M.expected_calibration_error(y, p, num_bins=10) == pytest.approx(0.45)


def test_gini_hand_computed():
    y = np.array([0.0, 0.0, 0.0, 10.0])
    # Perfect ordering: cum shares [1, 1, 1, 1] -> 2 * (4 - 2.5) / 4 = 0.75.
    assert M.gini(y, y) == pytest.approx(0.75)
    # Worst ordering: cum [0, 0, 0, 1] -> 2 * (1 - 2.5) / 4 = -0.75.
    assert M.gini(y, -y) == pytest.approx(-0.75)
    assert M.normalized_gini(y, y) == pytest.approx(1.0)
    assert M.normalized_gini(y, [3, 2, 1, 4]) == pytest.approx(1.0)
    assert M.normalized_gini(y, [4, 3, 2, 1]) == pytest.approx(-1.0)


def test_decile_table_hand_computed():
    y = np.arange(1, 11, dtype=float)  # 1..10
    pred = y * 2
    table = M.decile_table(y, pred, num_bins=5)
    assert table.decile.tolist() == [1, 2, 3, 4, 5]
    assert table.mean_actual.tolist() == [9.5, 7.5, 5.5, 3.5, 1.5]
    assert table.mean_predicted.tolist() == [19.0, 15.0, 11.0, 7.0, 3.0]
    assert table.share_of_actual.sum() == pytest.approx(1.0)
    assert table.share_of_actual.iloc[0] == pytest.approx(19 / 55)
    assert M.decile_mape(y, pred, num_bins=5) == pytest.approx(1.0)


def test_ranking_metrics_hand_computed():
    q = np.array([[1.0, 0.0], [0.0, 1.0]])
    c = np.array([[0.9, 0.1], [0.1, 0.9], [0.5, 0.5]])
    ranks = M.ranks_of_targets(q, c, [0, 2])
    assert ranks.tolist() == [1, 2]
    assert M.recall_at_k(ranks, 1) == 0.5
    assert M.ndcg_at_k(ranks, 2) == pytest.approx((1 + 1 / np.log2(3)) / 2)
    assert M.mrr(ranks) == pytest.approx(0.75)
    excluded = M.ranks_of_targets(q, c, [0, 2], exclude=np.array([False, True, False]))
    assert excluded.tolist() == [1, 1]


def test_log_loss_and_spearman():
    assert M.log_loss([1, 0], [0.5, 0.5]) == pytest.approx(np.log(2))
    assert M.spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="y_pred has"):
        M.auc([1, 0], [0.5])


def test_gini_hand_computed_partial_order():
    # y = [1, 2, 3, 4] (total 10) ordered by pred -> [2, 4, 1, 3]: cumulative shares
    # [0.2, 0.6, 0.7, 1.0], sum 2.5 -> gini = 2 * (2.5 - 2.5) / 4 = 0 (no better than chance).
    y = np.array([1.0, 2.0, 3.0, 4.0])
    pred = np.array([0.7, 1.0, 0.1, 0.9])
    assert M.gini(y, pred) == pytest.approx(0.0)
    # Perfect: [4, 3, 2, 1] -> shares [0.4, 0.7, 0.9, 1.0], sum 3.0 -> 2 * 0.5 / 4 = 0.25.
    assert M.gini(y, y) == pytest.approx(0.25)
    # pred puts 4 first, then 1, 3, 2: shares [0.4, 0.5, 0.8, 1.0], sum 2.7 -> 0.1 -> normalised 0.4.
    assert M.normalized_gini(y, [0.9, 0.1, 0.5, 1.0]) == pytest.approx(0.4)
    assert np.isnan(M.normalized_gini([0, 0], [1, 2]))  # nothing to order


def test_ece_hand_computed_unequal_bins():
    # Bin [0.1, 0.2): p = 0.1, 0.1, 0.1, y = 1, 0, 0 -> |1/3 - 0.1| = 0.2333, 3 rows.
    # Bin [0.7, 0.8): p = 0.7, y = 1 -> |1 - 0.7| = 0.3, 1 row.
    y = [1, 0, 0, 1]
    p = [0.1, 0.1, 0.1, 0.7]
    expected = (3 * abs(1 / 3 - 0.1) + 1 * 0.3) / 4
    assert M.expected_calibration_error(y, p, num_bins=10) == pytest.approx(expected)
    # Perfectly calibrated within each bin -> 0; p = 1.0 falls into the last bin.
    assert M.expected_calibration_error([0, 1, 1, 1], [0.5, 0.5, 1.0, 1.0], num_bins=2) == pytest.approx(0.0)


def test_ndcg_and_mrr_cutoffs_hand_computed():
    ranks = np.array([1, 3, 7])
    # NDCG@5: (1/log2(2) + 1/log2(4) + 0) / 3 = (1 + 0.5) / 3.
    assert M.ndcg_at_k(ranks, 5) == pytest.approx(0.5)
    assert M.ndcg_at_k(ranks, 10) == pytest.approx((1 + 0.5 + 1 / 3) / 3)
    assert M.mrr(ranks) == pytest.approx((1 + 1 / 3 + 1 / 7) / 3)
    assert M.mrr(ranks, k=5) == pytest.approx((1 + 1 / 3) / 3)
    assert M.recall_at_k(ranks, 3) == pytest.approx(2 / 3)
    assert np.isnan(M.ndcg_at_k([], 5))


def test_decile_table_uneven_sizes_and_zero_deciles():
    # 5 rows into 2 bins: order by pred [4, 3, 2, 1, 0] -> bins 1, 1, 1, 2, 2 (row i * 2 // 5 + 1).
    y = np.array([0.0, 0.0, 6.0, 3.0, 3.0])
    pred = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    table = M.decile_table(y, pred, num_bins=2)
    assert table.rows.tolist() == [3, 2]
    assert table.mean_predicted.tolist() == [3.0, 0.5]
    assert table.mean_actual.tolist() == [4.0, 0.0]
    assert table.share_of_actual.tolist() == [1.0, 0.0]
    # APE: |3 - 4| / 4 = 0.25; the zero-actual bin has no percentage error (NaN), so MAPE is 0.25.
    assert table.ape.iloc[0] == pytest.approx(0.25) and np.isnan(table.ape.iloc[1])
    assert M.decile_mape(y, pred, num_bins=2) == pytest.approx(0.25)


# ------------------------------------------- agreement with sklearn / scipy
def _random_sets(seed, n=500):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(float)
    p = rng.random(n)
    return rng, y, p


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_log_loss_spearman_agree_with_sklearn_and_scipy(seed):
    from scipy import stats
    from sklearn import metrics as skm

    rng, y, p = _random_sets(seed)
    tied = np.round(p, 1)  # many ties: both count them half
    assert M.auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert M.auc(y, tied) == pytest.approx(skm.roc_auc_score(y, tied), abs=1e-12)
    # A hand-written pairwise AUC (ties half) on the tied scores: the definition, not the library.
    pos, neg = tied[y == 1], tied[y == 0]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert M.auc(y, tied) == pytest.approx(pairs, abs=1e-12)
    assert M.log_loss(y, p) == pytest.approx(skm.log_loss(y, p), abs=1e-12)
    assert M.log_loss(y, p) == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), abs=1e-12)
    # Saturated predictions are clipped at 1e-7, not at float64's eps.
    assert M.log_loss([1.0, 0.0], [0.0, 1.0]) == pytest.approx(-np.log(1e-7), rel=1e-6)
    value = rng.lognormal(1, 1, len(y)) * (rng.random(len(y)) < 0.5)
    assert M.spearman(value, p) == pytest.approx(stats.spearmanr(value, p).statistic, abs=1e-12)
    assert np.isnan(M.spearman([1, 1, 1], [1, 2, 3]))  # constant side: no correlation, no warning
    assert M.rmse(value, p) == pytest.approx(np.sqrt(np.mean((value - p) ** 2)), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_ndcg_of_target_ranks_agrees_with_sklearn_on_score_matrices(seed):
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(seed)
    q, c = rng.normal(size=(40, 8)), rng.normal(size=(300, 8))
    target = rng.integers(0, len(c), len(q))
    ranks = M.ranks_of_targets(q, c, target, block_size=16)
    scores = (q.astype(np.float32) @ c.astype(np.float32).T).astype(np.float64)
    one_hot = np.zeros_like(scores)
    one_hot[np.arange(len(q)), target] = 1.0
    assert ranks.tolist() == M.ranks_in_scores(scores, target).tolist()
    assert ranks.tolist() == (1 + (scores > scores[np.arange(len(q)), target][:, None]).sum(1)).tolist()
    for k in (5, 50, 300):
        assert M.ndcg_at_k(ranks, k) == pytest.approx(ndcg_score(one_hot, scores, k=k), abs=1e-9)
        assert M.recall_at_k(ranks, k) == pytest.approx(
            np.mean([t in np.argsort(-s)[:k] for t, s in zip(target, scores)])
        )


def test_ranks_in_a_shared_score_row_count_ties_against_the_target():
    popularity = np.array([3.0, 1.0, 3.0, 0.0])
    assert M.ranks_in_scores(popularity, [0, 2, 1, 3]).tolist() == [2, 2, 3, 4]


@pytest.mark.parametrize("seed", [0, 1])
def test_grouped_ndcg_agrees_with_sklearn_without_ties(seed):
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 9, 30)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    gains = rng.integers(0, 4, len(groups)).astype(float)
    scores = rng.random(len(groups))  # continuous: no ties
    for k in (1, 3, 10):
        value, n = M.grouped_ndcg(groups, gains, scores, k)
        expected = [
            ndcg_score([2.0 ** gains[groups == g] - 1], [scores[groups == g]], k=k)
            for g in range(len(sizes))
            if gains[groups == g].max() > 0
        ]
        assert n == len(expected)
        assert value == pytest.approx(np.mean(expected), abs=1e-12)


def test_grouped_ndcg_hand_computed_and_pessimistic_on_ties():
    groups = ["a", "a", "a", "b", "b"]
    gains = [0, 1, 2, 1, 0]
    perfect, n = M.grouped_ndcg(groups, gains, [0, 1, 2, 1, 0], k=10)
    assert perfect == pytest.approx(1.0) and n == 2
    constant, _ = M.grouped_ndcg(groups, gains, [0, 0, 0, 0, 0], k=10)
    worst, _ = M.grouped_ndcg(groups, gains, [2, 1, 0, 0, 1], k=10)
    # Group a reversed: gains (2^g - 1) 0, 1, 3 at ranks 1..3 -> DCG 1/log2(3) + 3/2; ideal 3 + 1/log2(3).
    # Group b reversed: 0, 1 -> DCG 1/log2(3); ideal 1.
    a = (1 / np.log2(3) + 3 / 2) / (3 + 1 / np.log2(3))
    assert worst == pytest.approx((a + 1 / np.log2(3)) / 2)
    assert constant == pytest.approx(worst)  # ties count against the better rows
    assert M.grouped_ndcg(["a", "a"], [0, 0], [1, 2], k=5) == (pytest.approx(np.nan, nan_ok=True), 0)


def test_roc_curve_area_is_the_auc():
    from tfrec.evaluation.curves import roc_curve

    _, y, p = _random_sets(3)
    p = np.round(p, 2)
    fpr, tpr = roc_curve(y, p)
    assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
    assert len(fpr) == len(np.unique(p)) + 1  # one step per distinct score
    assert np.trapezoid(tpr, fpr) == pytest.approx(M.auc(y, p), abs=1e-12)


def test_a_diverged_model_gives_nan_metrics_not_an_exception():
    y = np.array([0, 1, 0, 1])
    p = np.array([0.1, np.nan, 0.3, 0.8])
    assert np.isnan(M.auc(y, p)) and np.isnan(M.log_loss(y, p))
    assert np.isnan(M.auc(y, np.array([0.1, np.inf, 0.3, 0.8])))
    assert M.auc(y, np.array([0.1, 0.9, 0.3, 0.8])) == 1.0
