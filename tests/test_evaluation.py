"""Evaluation: business value by hand, curve data, the HTML report, `tfrec evaluate` on a tiny run."""

import base64
import html.parser
import json

import numpy as np
import pandas as pd
import pytest

from tfrec.evaluation import (
    SECTIONS,
    EvaluationResult,
    business_value,
    ctr_metrics,
    cumulative_gain_curve,
    examination_curve,
    expected_clicks_at_k,
    expected_revenue_at_k,
    format_summary,
    random_ranking,
    ranking_metrics,
    recall_curve,
    reliability_curve,
    render_report,
    roc_curve,
    top_k,
    value_metrics,
)
from tfrec.evaluation import metrics as M
from tfrec.evaluation.off_policy import off_policy_report

# ------------------------------------------------------------ business value
A = np.array([[0.5, 0.2, 0.1], [0.1, 0.4, 0.3]])  # P(click | seen), 2 queries x 3 items
PRICE = np.array([10.0, 100.0, 1.0])
EXAM = np.array([1.0, 0.5, 0.25])
RANKING = np.array([[0, 1, 2], [2, 1, 0]])


def test_examination_curve_and_top_k():
    assert examination_curve(3, 1.0) == pytest.approx([1.0, 0.5, 1 / 3])
    assert examination_curve(2, 0.0) == pytest.approx([1.0, 1.0])
    with pytest.raises(ValueError, match="position_bias"):
        examination_curve(3, -1)
    assert top_k([[0.1, 0.9, 0.5], [3, 1, 2]], 2).tolist() == [[1, 2], [0, 2]]
    assert top_k([[1.0, 2.0, 2.0, 1.0]], 4).tolist() == [[1, 2, 0, 3]]  # ties: lower index first
    with pytest.raises(ValueError, match="k must be in"):
        top_k([[1, 2]], 3)
    r = random_ranking(5, 7, 4, seed=1)
    assert r.shape == (5, 4) and all(len(set(row)) == 4 for row in r)
    assert (random_ranking(5, 7, 4, seed=1) == r).all()


def test_expected_clicks_hand_computed():
    # Query 1, K=2: 1 x 0.5 + 0.5 x 0.2 = 0.6; query 2: 1 x 0.3 + 0.5 x 0.4 = 0.5; mean 0.55 per query.
    assert expected_clicks_at_k(A, RANKING, 2, EXAM) == pytest.approx(550.0)
    # K=3 adds 0.25 x 0.1 to both queries.
    assert expected_clicks_at_k(A, RANKING, 3, EXAM) == pytest.approx(575.0)
    # No examination curve: every shown position is seen.
    assert expected_clicks_at_k(A, RANKING, 2) == pytest.approx(1000 * ((0.5 + 0.2) + (0.3 + 0.4)) / 2)
    assert expected_clicks_at_k(A, RANKING, 1, EXAM, per=1) == pytest.approx(0.4)


def test_expected_revenue_hand_computed():
    # Query 1: 0.5 x 10 + 0.5 x 0.2 x 100 = 15; query 2: 0.3 x 1 + 0.5 x 0.4 x 100 = 20.3.
    assert expected_revenue_at_k(A, RANKING, PRICE, 2, EXAM) == pytest.approx(1000 * (15 + 20.3) / 2)
    with pytest.raises(ValueError, match="price has 2 items"):
        expected_revenue_at_k(A, RANKING, PRICE[:2], 2, EXAM)


def test_business_value_oracles_and_shares():
    table = business_value(A, PRICE, {"model": RANKING}, ks=[1, 2], examination=EXAM)
    # Oracle by P(click): q1 [0, 1], q2 [1, 2] -> K=2: (0.5 + 0.1) + (0.4 + 0.15) = 1.15 -> 575 per 1,000.
    assert table["oracle_clicks"]["clicks@2"] == pytest.approx(575.0)
    # Oracle by P(click) x price: values q1 [5, 20, 0.1] -> [1, 0]; q2 [1, 40, 0.3] -> [1, 0]:
    # q1 20 + 0.5 x 5 = 22.5, q2 40 + 0.5 x 1 = 40.5.
    assert table["oracle_revenue"]["revenue@2"] == pytest.approx(1000 * (22.5 + 40.5) / 2)
    assert table["model"]["clicks_share_of_oracle@2"] == pytest.approx(550 / 575)
    assert table["model"]["revenue_share_of_oracle@2"] == pytest.approx(17650 / 31500)
    assert table["oracle_clicks"]["clicks_share_of_oracle@1"] == pytest.approx(1.0)


def test_no_ranking_beats_the_oracle():
    rng = np.random.default_rng(0)
    a, price, exam = rng.random((20, 30)) * 0.3, rng.lognormal(3, 1, 30), examination_curve(10, 0.6)
    rankings = {f"random{s}": random_ranking(20, 30, 10, seed=s) for s in range(20)}
    table = business_value(a, price, rankings, ks=[5, 10], examination=exam)
    for name in rankings:
        for k in (5, 10):
            assert table[name][f"clicks_share_of_oracle@{k}"] <= 1.0
            assert table[name][f"revenue_share_of_oracle@{k}"] <= 1.0


def test_business_inputs_are_checked():
    with pytest.raises(ValueError, match="ranking has 1 queries"):
        expected_clicks_at_k(A, RANKING[:1], 2)
    with pytest.raises(ValueError, match="fewer than k=4"):
        expected_clicks_at_k(A, RANKING, 4)
    with pytest.raises(ValueError, match="outside"):
        expected_clicks_at_k(A, RANKING + 1, 3)
    with pytest.raises(ValueError, match="examination has 2 positions"):
        expected_clicks_at_k(A, RANKING, 3, EXAM[:2])


# ------------------------------------------------------------------- curves
def test_roc_curve_hand_computed_and_area_is_auc():
    y, s = [1, 0, 1, 0], [0.8, 0.3, 0.4, 0.5]
    fpr, tpr = roc_curve(y, s)
    assert fpr.tolist() == [0, 0, 0.5, 0.5, 1] and tpr.tolist() == [0, 0.5, 0.5, 1, 1]
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.3
    s = np.round(rng.random(500) + 0.4 * y, 1)  # many ties
    fpr, tpr = roc_curve(y, s)
    assert np.trapezoid(tpr, fpr) == pytest.approx(M.auc(y, s))
    with pytest.raises(ValueError, match="both positives and negatives"):
        roc_curve([1, 1], [0.1, 0.2])


def test_reliability_curve_hand_computed():
    y, p = [1, 0, 0, 1], [0.1, 0.1, 0.1, 0.7]
    rc = reliability_curve(y, p, num_bins=10)
    assert rc.bin.tolist() == [1, 7] and rc.rows.tolist() == [3, 1]
    assert rc.observed_rate.tolist() == pytest.approx([1 / 3, 1.0])
    assert rc.mean_predicted.tolist() == pytest.approx([0.1, 0.7])
    q = reliability_curve([0, 0, 1, 1], [0.01, 0.02, 0.03, 0.04], num_bins=2, strategy="quantile")
    assert q.rows.tolist() == [2, 2] and q.observed_rate.tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="strategy"):
        reliability_curve(y, p, strategy="width")


def test_recall_and_gain_curves():
    ranks = np.array([1, 3, 3, 8])
    ks, recall = recall_curve(ranks, 10)
    assert ks.tolist() == list(range(1, 11))
    assert recall.tolist() == [M.recall_at_k(ranks, k) for k in ks]
    share, gain = cumulative_gain_curve([0, 0, 0, 10], [0, 0, 0, 10])
    assert share.tolist() == [0, 0.25, 0.5, 0.75, 1] and gain.tolist() == [0, 1, 1, 1, 1]


# ------------------------------------------------------------------- report
def _synthetic_result():
    """An EvaluationResult with every section, from random data (no model)."""
    rng = np.random.default_rng(0)
    true_ctr = rng.beta(1, 20, 3000)
    clicks = (rng.random(3000) < true_ctr).astype(int)
    ctr = {
        "model": np.clip(true_ctr * rng.lognormal(0, 0.3, 3000), 0, 1),
        "oracle": true_ctr,
        "popularity": np.full(3000, clicks.mean()),
    }
    ranks = {
        "model": rng.integers(1, 60, 400),
        "oracle": rng.integers(1, 20, 400),
        "popularity": rng.integers(1, 200, 400),
    }
    ev = rng.lognormal(3, 1, 500) * (rng.random(500) < 0.5)
    value_y = np.where(rng.random(500) < 0.6, 0.0, ev * rng.lognormal(0, 0.5, 500))
    value = {"model": ev * rng.lognormal(0, 0.3, 500), "oracle": ev, "segment_mean": np.full(500, ev.mean())}
    a, price = rng.beta(1, 10, (50, 80)), rng.lognormal(3, 0.5, 80)
    rankings = {
        "model": top_k(a + rng.normal(0, 0.05, a.shape), 20),
        "popularity": np.repeat(top_k(a.mean(0, keepdims=True), 20), 50, 0),
        "random": random_ranking(50, 80, 20),
    }
    business = business_value(a, price, rankings, ks=[5, 20], examination=examination_curve(20, 0.6))
    business.update(queries=50, ks=[5, 20], examination="p ** -0.6")
    ks = [5, 20]
    metrics = {
        "ctr": ctr_metrics(clicks, ctr),
        "retrieval": {**ranking_metrics(ranks, ks), "queries": 400},
        "value": {**value_metrics(value_y, value), "users": 500},
        "business": business,
        "intent": {
            "model": {"top1": 0.8, "top3": 0.95, "total_variation": 0.4},
            "majority": {"top1": 0.1, "top3": 0.3, "total_variation": 0.3},
            "top_retrieved": {"top1": 0.7, "top3": 0.9, "total_variation": 0.6},
            "queries": 50,
            "categories": 12,
            "depth": 10,
            "planted_top_share": 0.35,
        },
    }
    points = [{"price_weight": w, "clicks": 900 - 300 * w, "revenue": 50_000 + 30_000 * w} for w in (0.0, 0.5, 1.0)]
    oracle = [{"price_weight": w, "clicks": 1200 - 400 * w, "revenue": 60_000 + 60_000 * w} for w in (0.0, 0.5, 1.0)]
    for point in points:
        point["frontier_revenue"] = 100_000.0
        point["revenue_share_at_same_clicks"] = point["revenue"] / 100_000
    metrics["fusion"] = {
        "k": 5,
        "candidates": 20,
        "queries": 50,
        "weights": {"click_weight": 1.0, "relevance_weight": 0.0, "value_weight": 0.0, "relevance_max": 3.0},
        "model": points,
        "oracle": oracle,
        "best_price_weight": 1.0,
        "best_revenue_share": 80_000 / 120_000,
        "min_revenue_share_at_same_clicks": 0.5,
    }
    logs = pd.DataFrame(
        {
            "session_id": np.repeat(np.arange(200), 3),
            "position": np.tile([1, 2, 3], 200),
            "propensity": rng.uniform(0.2, 0.9, 600),
            "click": (rng.random(600) < 0.2).astype(int),
            "purchase_value": rng.exponential(10, 600),
        }
    )
    ab = off_policy_report(logs, np.tile([2, 1, 3], 200), resamples=50)
    ab["true_online"] = {"click": 0.6, "purchase_value": 6.0}
    ab["true_logging"] = {"click": 0.55, "purchase_value": 5.0}
    metrics["ab"] = ab
    return EvaluationResult(
        metrics=metrics,
        ks=ks,
        ctr_labels=clicks,
        ctr_predictions=ctr,
        retrieval_ranks=ranks,
        value_labels=value_y,
        value_predictions=value,
        context={"data": "synthetic test data"},
    )


class _ReportParser(html.parser.HTMLParser):
    """Collects per section: heading, images, captions; and every external reference."""

    def __init__(self):
        super().__init__()
        self.sections, self.current, self.tag_stack, self.external = {}, None, [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tag_stack.append(tag)
        if tag == "section":
            self.current = attrs["id"]
            self.sections[self.current] = {"heading": "", "images": [], "captions": [], "tables": 0}
        elif tag == "img" and self.current:
            self.sections[self.current]["images"].append(attrs["src"])
        elif tag == "table" and self.current:
            self.sections[self.current]["tables"] += 1
        for key in ("src", "href"):
            if key in attrs and not attrs[key].startswith("data:"):
                self.external.append(attrs[key])
        if tag in ("script", "link"):
            self.external.append(tag)

    def handle_endtag(self, tag):
        self.tag_stack.pop()
        if tag == "section":
            self.current = None

    def handle_data(self, data):
        if not self.current or not self.tag_stack:
            return
        if self.tag_stack[-1] == "h2":
            self.sections[self.current]["heading"] += data
        elif self.tag_stack[-1] == "figcaption":
            self.sections[self.current]["captions"].append(data)


def _parse(text):
    parser = _ReportParser()
    parser.feed(text)
    return parser


def _assert_complete_report(text):
    parser = _parse(text)
    assert parser.external == []  # self-contained: no scripts, stylesheets or remote images
    assert [s["heading"] for s in parser.sections.values()] == list(SECTIONS.values())
    for key, section in parser.sections.items():
        assert section["images"], f"section {key} has no figure"
        assert len(section["captions"]) == len(section["images"]), key
        assert all(len(c.split()) >= 8 and c.rstrip().endswith(".") for c in section["captions"]), key
        assert section["tables"] >= 1, key
        for src in section["images"]:
            assert src.startswith("data:image/png;base64,")
            assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    return parser


def test_report_renders_every_section_with_figures_and_captions():
    result = _synthetic_result()
    text = render_report(result, title="synthetic")
    parser = _assert_complete_report(text)
    assert len(parser.sections["ctr"]["images"]) == 2  # ROC and reliability
    assert len(parser.sections["value"]["images"]) == 2  # decile chart and gain curve
    assert '<h2 id="summary">Summary</h2>' in text and "synthetic test data" in text
    # The numbers in the tables are the metrics.
    assert f"{result.metrics['ctr']['model']['auc']:.4f}" in text
    assert f"{result.metrics['business']['model']['revenue@5']:,.1f}" in text
    # Axis labels carry units.
    assert "per 1,000 queries" in text


def test_report_says_what_was_not_evaluated():
    full = _synthetic_result()
    only_value = EvaluationResult(
        metrics={"value": full.metrics["value"]},
        ks=[10],
        value_labels=full.value_labels,
        value_predictions={"model": full.value_predictions["model"]},
        context={"currency": "GBP"},
    )
    parser = _parse(text := render_report(only_value))
    assert parser.sections["value"]["images"] and not parser.sections["ctr"]["images"]
    assert text.count("Not evaluated") == len(SECTIONS) - 1 and "(GBP)" in text


def test_summary_has_every_section():
    text = format_summary(_synthetic_result().metrics, [5, 20])
    for label in (
        "CTR AUC",
        "Recall@20",
        "NDCG@20",
        "Value normalised Gini",
        "Expected clicks@5",
        "Expected revenue@5",
        "of the oracle's",
        "Intent top-1 accuracy",
    ):
        assert label in text
    assert len(text.splitlines()) < 30  # one screen


# ------------------------------------------------------- tfrec evaluate (CLI)
@pytest.fixture(scope="module")
def tiny_run(small_trained, tmp_path_factory):
    """A run directory around the session's small trained model (no training here)."""
    import dataclasses

    from tfrec.jobs.config import JobConfig

    sim, _, model = small_trained
    run_dir = tmp_path_factory.mktemp("tiny") / "run"
    run_dir.mkdir()
    model.save(run_dir / "model.keras")
    JobConfig.from_dict(
        {
            "simulator": dataclasses.asdict(sim.config),
            "evaluation": {"ks": [5, 10], "max_queries": 150},
            "output_dir": str(run_dir),
        }
    ).to_yaml(run_dir / "config.yaml")
    return run_dir, sim


def test_tfrec_evaluate_writes_metrics_report_and_summary(tiny_run, tmp_path, capsys):
    from tfrec.cli import main
    from tfrec.data import time_split, validate
    from tfrec.data.split import holdout_mask

    run_dir, sim = tiny_run
    assert main(["evaluate", "--run-dir", str(run_dir), "--output", str(tmp_path / "eval")]) == 0
    out = capsys.readouterr().out
    assert "CTR AUC" in out and "Expected revenue@10" in out and "report.html" in out
    _assert_complete_report((tmp_path / "eval" / "report.html").read_text())
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    # The data were drawn again from config.yaml: the same test split and held-out users as the run's.
    split = time_split(
        validate(sim.impressions, sim.schema()).valid, sim.schema(), valid_fraction=0.1, test_fraction=0.15
    )
    assert metrics["split"] == split.sizes()
    assert metrics["ctr"]["oracle"] == ctr_metrics(split.test.click, {"o": split.test.true_ctr})["o"]
    held = holdout_mask(sim.users.user_id, 0.2)
    users = sim.users[held]
    assert metrics["value"]["oracle"] == value_metrics(users.future_value, {"o": users.true_expected_value})["o"]
    business = metrics["business"]
    assert business["ks"] == [5, 10] and business["queries"] == split.test.session_id.nunique()
    for k in (5, 10):  # the oracles are the best achievable
        assert business["oracle_clicks"][f"clicks@{k}"] >= business["model"][f"clicks@{k}"]
        assert business["oracle_revenue"][f"revenue@{k}"] >= business["model"][f"revenue@{k}"]
    assert not (run_dir / "report.html").exists()  # --output leaves the run directory alone


def test_tfrec_evaluate_errors_name_the_problem(tmp_path, capsys):
    from tfrec.cli import main

    assert main(["evaluate", "--run-dir", str(tmp_path / "nope")]) == 2
    assert "run directory not found" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    assert main(["evaluate", "--run-dir", str(tmp_path / "run")]) == 2
    assert "has no config.yaml" in capsys.readouterr().err
    (tmp_path / "run" / "config.yaml").write_text("simulator: {num_users: 10}\n")
    assert main(["evaluate", "--run-dir", str(tmp_path / "run")]) == 2
    assert "has no model.keras" in capsys.readouterr().err
    (tmp_path / "run" / "config.yaml").write_text("data: {source: warehouse}\n")
    assert main(["evaluate", "--run-dir", str(tmp_path / "run")]) == 2
    assert "data.source must be" in capsys.readouterr().err


def test_file_runs_go_to_the_files_source(tmp_path, monkeypatch):
    from tfrec.cli import main
    from tfrec.jobs import evaluate as job_evaluate
    from tfrec.jobs.files import FilesSource

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("data: {source: files, paths: [x.csv]}\n")
    calls = []
    monkeypatch.setattr(
        job_evaluate,
        "evaluate_run_dir",
        lambda source, config, run, out, verbose: calls.append((type(source), config.data.paths, run, out)),
    )
    assert main(["evaluate", "--run-dir", str(run_dir), "--output", str(tmp_path / "o")]) == 0
    assert calls == [(FilesSource, ["x.csv"], str(run_dir), str(tmp_path / "o"))]
    assert main(["evaluate", "--run-dir", str(run_dir)]) == 0  # the output defaults to the run directory
    assert calls[-1][3] == str(run_dir)


def test_holdout_mask_is_the_training_mask():
    # One definition of the held-out users: the numpy mask (evaluation) equals the tf.data transform's (training).
    import tensorflow as tf

    from tfrec.data.split import HOLDOUT_BUCKETS, holdout_mask
    from tfrec.training.job import value_label_mask

    ids = np.array([f"u{i}" for i in range(2000)])
    held = holdout_mask(ids, 0.2)
    assert held.dtype == bool and 0.15 < held.mean() < 0.25
    assert np.array_equal(held, holdout_mask(list(ids), 0.2))  # stable: the same ids, the same users
    assert not holdout_mask(ids, 0.0).any() and holdout_mask(ids, 1.0).all() and HOLDOUT_BUCKETS == 1000
    ds = tf.data.Dataset.from_tensor_slices(({"user": ids}, {"value": np.ones(len(ids), np.float32)}))
    masked = ds.batch(500).map(value_label_mask("user", 0.2))
    hidden = np.concatenate([np.isnan(labels["value"].numpy()) for _, labels in masked])
    assert np.array_equal(hidden, held)


def test_summary_without_oracle_uses_the_other_scorers():
    rng = np.random.default_rng(0)
    y = np.where(rng.random(200) < 0.5, 0.0, rng.lognormal(3, 1, 200))
    metrics = {"value": value_metrics(y, {"model": y + rng.normal(0, 5, 200), "rfm": rng.random(200)})}
    line = next(row for row in format_summary(metrics, [10]).splitlines() if row.startswith("Value normalised Gini"))
    assert line.split()[4] == "-" and line.endswith("rfm")  # no oracle on real data
    assert float(line.split()[3]) == pytest.approx(metrics["value"]["model"]["normalized_gini"], abs=1e-4)
