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
