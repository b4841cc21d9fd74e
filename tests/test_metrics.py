import numpy as np
import pytest

from tfrec import metrics as M


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
