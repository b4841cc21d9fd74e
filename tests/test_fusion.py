"""Objective fusion: the formula, the `rank` signatures and the click-revenue trade-off curve."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (loads the TF Text ops for the SavedModel)

from tfrec.evaluation.fusion import frontier_revenue, fusion_tradeoff
from tfrec.evaluation.simulated import session_queries
from tfrec.export import export_model
from tfrec.export.saved_model import example_inputs
from tfrec.layers.objective_fusion import ObjectiveFusion
from tfrec.models import ModelConfig
from tfrec.models.inference import candidate_scores, predict_dataframe, tower_outputs


def test_fused_score_equals_the_formula_computed_by_hand():
    fusion = ObjectiveFusion(
        click_weight=2.0, relevance_weight=0.5, price_weight=0.3, value_weight=0.2, relevance_max=3
    )
    ctr = np.array([[0.1, 0.02], [0.3, 0.5]], np.float32)
    relevance = np.array([[3.0, 1.0], [0.0, 2.0]], np.float32)
    price = np.array([[10.0, 200.0], [5.0, 0.0]], np.float32)
    value = np.array([0.0, 9.0], np.float32)
    got = fusion({"ctr": ctr, "relevance": relevance, "price": price, "user_value": value}).numpy()
    for b in range(2):
        for n in range(2):
            log_price = np.log(max(price[b, n], 1e-6))
            want = (
                2.0 * np.log(ctr[b, n])
                + 0.5 * relevance[b, n] / 3
                + 0.3 * log_price
                + 0.2 * np.log1p(value[b]) * log_price
            )
            assert got[b, n] == pytest.approx(want, rel=1e-5)
    # Per-row overrides: row 0 ranks by revenue (c=1, p=1), row 1 keeps the defaults.
    weights = {"click_weight": [1.0, 2.0], "relevance_weight": [0.0, 0.5], "price_weight": [1.0, 0.3]}
    weights["value_weight"] = [0.0, 0.2]
    over = fusion({"ctr": ctr, "relevance": relevance, "price": price, "user_value": value}, weights=weights).numpy()
    np.testing.assert_allclose(over[0], np.log(ctr[0] * price[0]), rtol=1e-5)
    np.testing.assert_allclose(over[1], got[1], rtol=1e-6)
    with pytest.raises(ValueError, match="unknown weights"):
        fusion({"ctr": ctr}, weights={"margin_weight": [1.0, 1.0]})
    assert ObjectiveFusion.from_config(fusion.get_config()).get_config() == fusion.get_config()


def test_frontier_revenue_is_the_upper_hull_of_the_oracle_points():
    # (clicks, revenue): (10, 0), (8, 1) under the line to (6, 8), (5, 7) dominated.
    clicks, revenue = [10, 8, 6, 5], [0, 1, 8, 7]
    np.testing.assert_allclose(frontier_revenue(clicks, revenue, [10, 8, 6, 5, 11]), [0, 4, 8, 8, 0])


def test_fusion_config_is_validated_and_read_from_dicts():
    config = ModelConfig.from_dict({"fusion": {"price_weight": 1.0, "candidates": 50}})
    assert config.fusion.price_weight == 1.0 and config.fusion.candidates == 50
    with pytest.raises(ValueError, match="model.fusion.candidates"):
        ModelConfig.from_dict({"fusion": {"candidates": 0}})
    with pytest.raises(ValueError, match="model.fusion"):
        ModelConfig.from_dict({"fusion": {"margin_weight": 1.0}})


@pytest.fixture(scope="module")
def exported(small_trained, tmp_path_factory):
    sim, df, model = small_trained
    base = tmp_path_factory.mktemp("fusion_export")
    result = export_model(model, str(base), catalog=sim.items, examples=df.head(8), max_k=20, verbose=False)
    return tf.saved_model.load(result.path)


def _call(loaded, name, inputs):
    fn = loaded.signatures[name]
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def test_rank_signature_scores_candidates_by_the_fused_objective(small_trained, exported):
    sim, df, model = small_trained
    rows = df.drop_duplicates("session_id").head(6)
    inputs = example_inputs(model, rows, k=8)
    ranked = _call(exported, "rank", inputs["rank"])
    assert ranked["item_ids"].shape == (6, 8)
    # The ctr the signature used is the model's own P(click) of that (query, user, item) at position 1.
    catalog = sim.items.set_index("item_id")
    for i in range(len(rows)):
        ids = [x.decode() for x in ranked["item_ids"][i]]
        assert len(set(ids)) == 8
        pairs = pd.concat([rows.iloc[[i]].drop(columns=["position"])] * 8, ignore_index=True)
        for column in ("item_title", "item_category", "item_brand", "item_price"):
            pairs[column] = catalog.loc[ids, column].to_numpy()
        pairs["item_id"] = ids
        expected = predict_dataframe(model, pairs)["ctr"]
        np.testing.assert_allclose(ranked["ctr"][i], expected, rtol=1e-4, atol=1e-6)
        # Default weights (c = 1, the rest 0): the fused score is log(ctr), best first.
        np.testing.assert_allclose(ranked["scores"][i], np.log(expected), rtol=1e-4, atol=1e-5)
        assert np.all(np.diff(ranked["scores"][i]) <= 1e-6)
    # Per-request weights: a price weight of 1 ranks by ctr x price; 0 is the default ranking.
    same = dict(inputs["rank_weighted"])
    np.testing.assert_array_equal(_call(exported, "rank_weighted", same)["item_ids"], ranked["item_ids"])
    revenue = dict(same, price_weight=np.ones(6, np.float32))
    by_revenue = _call(exported, "rank_weighted", revenue)
    for i in range(len(rows)):
        ids = [x.decode() for x in by_revenue["item_ids"][i]]
        price = catalog.loc[ids, "item_price"].to_numpy()
        np.testing.assert_allclose(by_revenue["scores"][i], np.log(by_revenue["ctr"][i] * price), rtol=1e-4, atol=1e-4)
    assert (by_revenue["item_ids"] != ranked["item_ids"]).any()
    # Exclusions and k as in retrieve.
    first = ranked["item_ids"][:, 0].astype(str)
    fewer = dict(inputs["rank"], k=np.full(6, 3, np.int32), exclude_item_ids=first[:, None].astype(object))
    again = _call(exported, "rank", fewer)
    assert not (again["item_ids"][:, :3].astype(str) == first[:, None]).any()
    assert (again["item_ids"][:, 3:] == b"").all()


def test_tradeoff_curve_of_a_trained_model_against_the_oracle(small_trained):
    sim, df, model = small_trained
    sessions = session_queries(df, 60, seed=0)
    curve = fusion_tradeoff(model, sim, sessions, price_weights=[0.0, 1.0], k=5, candidates=30)
    assert [p["price_weight"] for p in curve["model"]] == [0.0, 1.0]
    oracle = {p["price_weight"]: p for p in curve["oracle"]}
    # The oracle's p = 0 point maximises clicks, p = 1 revenue: no model point beats them.
    for point in curve["model"]:
        assert point["clicks"] <= oracle[0.0]["clicks"] + 1e-6
        assert point["revenue"] <= oracle[1.0]["revenue"] + 1e-6
        assert 0 < point["revenue_share_at_same_clicks"] <= 1 + 1e-9
    assert 0 < curve["best_revenue_share"] <= 1
    # The curve's p = 0 point is the candidates reranked by the model's ctr, computed here by hand.
    query, items = tower_outputs(model, sessions, "query"), tower_outputs(model, sim.items, "item")
    retrieved = np.argsort(-(query["embedding"] @ items["embedding"].T), axis=1, kind="stable")[:, :30]
    ctr = candidate_scores(model, query, items, retrieved, sessions["query"], sim.items["item_title"])["ctr"]
    shown = np.take_along_axis(retrieved, np.argsort(-ctr, axis=1, kind="stable")[:, :5], 1)
    a = 1 / (1 + np.exp(-sim.true_click_logits(sessions.session_id.to_numpy())))
    exam = np.arange(1, 6) ** -sim.config.position_bias
    clicks = 1000 * (np.take_along_axis(a, shown, 1) * exam).sum(1).mean()
    assert curve["model"][0]["clicks"] == pytest.approx(clicks, rel=1e-3)
