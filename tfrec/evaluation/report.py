"""A self-contained HTML evaluation report (figures embedded as PNG).

Sections: a summary table, then *CTR*, *User value*, *Retrieval & ranking*,
*Business value*, the ranking stage's trade-off and *Query intent*, each
with its metrics table and figures. Every figure has a title, axes with units and a one-sentence caption saying what it
shows, so the report reads on its own for someone who did not train the
model. Figures are drawn with matplotlib's Agg canvas on `Figure` objects
(no pyplot state, no display needed) and inlined as base64 PNG, so the file
can be mailed or attached to a ticket as it is.

Example:

```python
result = evaluate_simulated(model, sim, split, ks=[10, 50, 100])
write_report(result, "runs/quickstart/report.html")
```
"""

from __future__ import annotations

import base64
import datetime
import html
import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from tfrec.evaluation import metrics as M
from tfrec.evaluation.curves import (
    cumulative_gain_curve,
    recall_curve,
    reliability_curve,
    roc_curve,
)
from tfrec.evaluation.result import EvaluationResult

SECTIONS = {
    "ctr": "CTR",
    "value": "User value",
    "retrieval": "Retrieval & ranking",
    "business": "Business value",
    "fusion": "Ranking for the business: clicks against revenue",
    "intent": "Query intent",
    "ab": "Offline A/B against the logging policy",
}

# One colour per scorer, the same in every figure.
_COLOURS = {
    "model": "#1f77b4",
    "oracle": "#2ca02c",
    "oracle_clicks": "#2ca02c",
    "oracle_revenue": "#98df8a",
    "popularity": "#ff7f0e",
    "segment_mean": "#ff7f0e",
    "random": "#7f7f7f",
    # The baselines of runs on tables (tfrec.baselines), none in the model's blue.
    "bm25": "#d62728",
    "bm25_calibrated": "#d62728",
    "minilm_cosine": "#9467bd",
    "logged_order": "#8c564b",
    "cooccurrence": "#d62728",
    "calibration_scaled": "#8c564b",
    "rfm": "#e377c2",
    "bg_nbd_gamma_gamma": "#d62728",
    "rfm_gbm": "#9467bd",
    "majority": "#ff7f0e",
    "top_retrieved": "#8c564b",
}
_LABELS = {
    "model": "model",
    "oracle": "oracle (truth)",
    "oracle_clicks": "oracle by P(click)",
    "oracle_revenue": "oracle by P(click) x price",
    "popularity": "popularity baseline",
    "segment_mean": "segment-mean baseline",
    "random": "random",
    "bm25": "BM25",
    "bm25_calibrated": "BM25 (isotonic calibration)",
    "minilm_cosine": "zero-shot MiniLM cosine",
    "cooccurrence": "item co-occurrence",
    "calibration_scaled": "calibration spend scaled",
    "rfm": "RFM ridge",
    "bg_nbd_gamma_gamma": "BG/NBD + Gamma-Gamma",
    "rfm_gbm": "gradient boosting on RFM",
    "majority": "majority category",
    "top_retrieved": "category of the top retrieved item",
}

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:980px;margin:2em auto;color:#222;
line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
th,td{border:1px solid #ddd;padding:.3em .6em;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
figure{margin:1.2em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.92em;color:#444;margin-top:.3em}
.note{color:#555;font-size:.92em}dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dt{font-weight:600}dd{margin:0}
"""


# ------------------------------------------------------------------ helpers
def _label(name):
    return _LABELS.get(name, name.replace("_", " "))


def _colour(name):
    return _COLOURS.get(name)


def _png(fig: Figure) -> str:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(fig: Figure, caption: str) -> str:
    return (
        f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{_png(fig)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _fmt(v, digits=4):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    if isinstance(v, (int, np.integer)):
        return f"{v:,}"
    if abs(v) >= 100:
        return f"{v:,.1f}"
    return f"{v:.{digits}f}"


def _table(header, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c if isinstance(c, str) else _fmt(c))}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _scorer_table(section: dict, metrics: list[tuple[str, str]]) -> str:
    scorers = [k for k, v in section.items() if isinstance(v, dict)]
    return _table(
        ["scorer"] + [label for _, label in metrics],
        [[_label(s)] + [section[s].get(key) for key, _ in metrics] for s in scorers],
    )


def _not_evaluated(reason: str) -> str:
    return f'<p class="note">Not evaluated: {html.escape(reason)}</p>'


# ------------------------------------------------------------------ sections
def _ctr_section(result: EvaluationResult) -> str:
    m = result.metrics.get("ctr")
    if not m or result.ctr_labels is None or result.ctr_predictions is None:
        return _not_evaluated("the data has no click labels.")
    y, preds = result.ctr_labels, result.ctr_predictions
    parts = [
        (
            '<p class="note">Click-through rate prediction on the test impressions: AUC (1 = every click ranked above '
            "every non-click, 0.5 = chance), log loss (lower is better) and expected calibration error (ECE: mean gap "
            "between predicted and observed click rate over 10 equal-width bins of the prediction, weighted by "
            f"impressions). {len(y):,} impressions, {int(np.sum(y)):,} clicks "
            f"({np.mean(y):.2%}).</p>"
        ),
        _scorer_table(m, [("auc", "AUC"), ("log_loss", "log loss"), ("ece", "ECE")]),
    ]
    fig = Figure(figsize=(5.2, 4.6), layout="constrained")
    ax = fig.add_subplot()
    for name, p in preds.items():
        fpr, tpr = roc_curve(y, p)
        ax.plot(fpr, tpr, color=_colour(name), label=f"{_label(name)} (AUC {m[name]['auc']:.3f})")
    ax.plot([0, 1], [0, 1], ls=":", color="#999", label="chance")
    ax.set(
        title="ROC curve of click prediction",
        xlabel="false positive rate (share of non-clicks flagged)",
        ylabel="true positive rate (share of clicks flagged)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    ax.legend(loc="lower right", fontsize=8)
    best_base = "popularity" if "popularity" in m else None
    caption = (
        f"Share of clicks against share of non-clicks above each score threshold; the model's AUC is "
        f"{m['model']['auc']:.3f}"
        + (f" against {m['oracle']['auc']:.3f} for the truth" if "oracle" in m else "")
        + (f" and {m[best_base]['auc']:.3f} for the baseline." if best_base else ".")
    )
    parts.append(_figure(fig, caption))

    fig = Figure(figsize=(5.2, 4.6), layout="constrained")
    ax = fig.add_subplot()
    top = 0.0
    for name, p in preds.items():
        rc = reliability_curve(y, p, num_bins=20, strategy="quantile")
        ax.plot(
            rc.mean_predicted,
            rc.observed_rate,
            marker="o",
            ms=3,
            color=_colour(name),
            label=f"{_label(name)} (ECE {m[name]['ece']:.4f})",
        )
        top = max(top, rc.mean_predicted.max(), rc.observed_rate.max())
    ax.plot([0, top], [0, top], ls=":", color="#999", label="perfect calibration")
    ax.set(
        title="Calibration (reliability) of click prediction",
        xlabel="mean predicted click probability in the bin",
        ylabel="observed click rate in the bin",
    )
    ax.legend(loc="upper left", fontsize=8)
    parts.append(
        _figure(
            fig,
            "Observed click rate against mean predicted probability in 20 equal-count bins of "
            "the prediction; points on the dotted diagonal mean the predicted CTRs can be "
            "used as probabilities (e.g. to forecast clicks).",
        )
    )
    return "".join(parts)


def _value_section(result: EvaluationResult, currency: str) -> str:
    m = result.metrics.get("value")
    if not m or result.value_labels is None or result.value_predictions is None:
        return _not_evaluated("the data has no user value labels.")
    y, preds = np.asarray(result.value_labels, dtype=np.float64), result.value_predictions
    parts = [
        (
            '<p class="note">Future value of users whose value label training never saw. Normalised Gini: how well '
            "the prediction orders users by value (1 = perfect order, 0 = random); Spearman: rank correlation; "
            "decile MAPE: mean absolute percentage error of the mean prediction over the ten predicted deciles "
            '(the ZILN paper\'s calibration measure); AUC of "spends at all": how well the prediction separates '
            f"users who spend from those who do not. {len(y):,} users, {np.mean(y == 0):.0%} with zero value, "
            f"mean {np.mean(y):,.2f} {html.escape(currency)}.</p>"
        ),
        _scorer_table(
            m,
            [
                ("normalized_gini", "normalised Gini"),
                ("spearman", "Spearman"),
                ("decile_mape", "decile MAPE"),
                ("spend_auc", "AUC(spends at all)"),
            ],
        ),
    ]
    table = M.decile_table(y, preds["model"])
    fig = Figure(figsize=(7.5, 4.4), layout="constrained")
    ax = fig.add_subplot()
    x = table.decile.to_numpy()
    ax.bar(x - 0.2, table.mean_actual, width=0.4, color="#1f77b4", label="actual (mean future value)")
    ax.bar(x + 0.2, table.mean_predicted, width=0.4, color="#aec7e8", label="predicted (mean of the model)")
    ax.set(
        title="Predicted and actual user value by predicted decile",
        xlabel="predicted-value decile (1 = the 10% of users with the highest prediction)",
        ylabel=f"mean future value per user ({currency})",
        xticks=x,
    )
    ax.legend(fontsize=8)
    top_share = float(table.share_of_actual.iloc[0])
    parts.append(
        _figure(
            fig,
            f"Users sorted by the model's predicted value and cut into tenths: the top tenth "
            f"holds {top_share:.0%} of all future value (10% would be no better than chance), "
            f"and bars of equal height mean the predicted amounts are right on average.",
        )
    )
    parts.append(
        _table(
            [
                "decile",
                "users",
                f"mean predicted ({currency})",
                f"mean actual ({currency})",
                "share of total value",
                "abs. % error",
            ],
            [
                [int(r.decile), int(r.rows), r.mean_predicted, r.mean_actual, r.share_of_actual, r.ape]
                for r in table.itertuples()
            ],
        )
    )
    fig = Figure(figsize=(5.2, 4.6), layout="constrained")
    ax = fig.add_subplot()
    share, gain = cumulative_gain_curve(y, y)
    ax.plot(share, gain, color="#000", ls="--", lw=1, label="perfect order")
    for name, p in preds.items():
        share, gain = cumulative_gain_curve(y, p)
        ax.plot(
            share, gain, color=_colour(name), label=f"{_label(name)} (normalised Gini {m[name]['normalized_gini']:.3f})"
        )
    ax.plot([0, 1], [0, 1], ls=":", color="#999", label="random order")
    ax.set(
        title="Cumulative value captured (gain curve)",
        xlabel="share of users, highest predicted first",
        ylabel="share of total future value",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    ax.legend(loc="lower right", fontsize=8)
    parts.append(
        _figure(
            fig,
            "How much of all future value the top x% of users by prediction hold, e.g. for "
            "targeting a campaign at them; the normalised Gini is the area above the diagonal "
            "relative to the perfect order's.",
        )
    )
    return "".join(parts)


def _retrieval_section(result: EvaluationResult) -> str:
    m = result.metrics.get("retrieval")
    if not m or result.retrieval_ranks is None:
        return _not_evaluated("the data has no clicked items to retrieve.")
    ks, ranks = result.ks, result.retrieval_ranks
    metric_cols = (
        [(f"recall@{k}", f"Recall@{k}") for k in ks] + [(f"ndcg@{k}", f"NDCG@{k}") for k in ks] + [("mrr", "MRR")]
    )
    parts = [
        (
            '<p class="note">Each clicked test item is looked up among the whole catalog by each scorer. Recall@K: '
            "share of clicked items ranked in the top K; NDCG@K: 1/log2(1 + rank) if in the top K, so higher ranks "
            f"count more; MRR: mean of 1/rank. {m.get('queries', len(next(iter(ranks.values())))):,} queries.</p>"
        ),
        _scorer_table(m, metric_cols),
    ]
    k_max = max(ks)
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    ax1, ax2 = fig.subplots(1, 2)
    for name, r in ranks.items():
        kk, rec = recall_curve(r, k_max)
        r = np.asarray(r, dtype=np.float64)
        gains = np.where(r[None, :] <= kk[:, None], 1.0 / np.log2(r[None, :] + 1.0), 0.0).mean(1)
        ax1.plot(kk, rec, color=_colour(name), label=_label(name))
        ax2.plot(kk, gains, color=_colour(name), label=_label(name))
    ax1.set(
        title="Recall@K over the whole catalog",
        xlabel="K (items retrieved per query)",
        ylabel="Recall@K (share of clicked items found)",
        ylim=(0, 1),
    )
    ax2.set(title="NDCG@K", xlabel="K (items retrieved per query)", ylabel="NDCG@K (0 to 1)")
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    k_mid = ks[len(ks) // 2]
    ratio = ""
    if "popularity" in m and m["popularity"][f"recall@{k_mid}"] > 0:
        ratio = f", {m['model'][f'recall@{k_mid}'] / m['popularity'][f'recall@{k_mid}']:.1f}x the popularity baseline"
    parts.append(
        _figure(
            fig,
            f"Share of clicked items found in the top K for every K up to {k_max} (left) and "
            f"the rank-discounted NDCG@K (right); the model finds "
            f"{m['model'][f'recall@{k_mid}']:.0%} within the top {k_mid}{ratio}.",
        )
    )
    return "".join(parts)


def _business_section(result: EvaluationResult, currency: str) -> str:
    m = result.metrics.get("business")
    if not m:
        return _not_evaluated("the data has no click probabilities and prices to value a ranking with.")
    ks = m["ks"]
    rankers = [k for k, v in m.items() if isinstance(v, dict)]
    parts = [
        (
            '<p class="note">Each of '
            f"{m['queries']:,} test queries gets the top K items of the whole catalog from each ranker. Expected "
            "clicks@K = sum over positions p &le; K of P(position p seen) x P(click | item seen); expected revenue@K "
            "weighs each expected click by the item's price (each click buying one item at list price). Both use "
            "the true click probabilities of the simulator and are given per 1,000 queries. The oracles rank by the "
            "truth (by P(click) for clicks, by P(click) x price for revenue), the most any ranker can get; "
            f"&ldquo;share of oracle&rdquo; is how much of that the ranker captures. Examination: "
            f"{html.escape(m.get('examination', 'every position is seen'))}.</p>"
        ),
    ]
    rows = []
    for name in rankers:
        for k in ks:
            r = m[name]
            rows.append(
                [
                    _label(name),
                    str(k),
                    r[f"clicks@{k}"],
                    r[f"clicks_share_of_oracle@{k}"],
                    r[f"revenue@{k}"],
                    r[f"revenue_share_of_oracle@{k}"],
                ]
            )
    parts.append(
        _table(
            [
                "ranker",
                "K",
                "expected clicks / 1,000 queries",
                "share of oracle clicks",
                f"expected revenue / 1,000 queries ({currency})",
                "share of oracle revenue",
            ],
            rows,
        )
    )
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    width = 0.8 / len(rankers)
    x = np.arange(len(ks))
    for ax, key, ylabel in (
        (axes[0], "clicks", "expected clicks per 1,000 queries"),
        (axes[1], "revenue", f"expected revenue per 1,000 queries ({currency})"),
    ):
        for i, name in enumerate(rankers):
            ax.bar(
                x + (i - (len(rankers) - 1) / 2) * width,
                [m[name][f"{key}@{k}"] for k in ks],
                width=width,
                color=_colour(name),
                label=_label(name),
            )
        ax.set(
            title=f"Expected {key} in the top K",
            xlabel="K (items shown per query)",
            ylabel=ylabel,
            xticks=x,
            xticklabels=[str(k) for k in ks],
        )
        ax.grid(axis="y", alpha=0.3)
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    axes[0].legend(fontsize=8)
    k0 = ks[0]
    parts.append(
        _figure(
            fig,
            f"What each ranking would earn per 1,000 searches: at K={k0} the model gets "
            f"{m['model'][f'clicks_share_of_oracle@{k0}']:.0%} of the achievable clicks and "
            f"{m['model'][f'revenue_share_of_oracle@{k0}']:.0%} of the achievable revenue, against "
            + (
                f"{m['popularity'][f'revenue_share_of_oracle@{k0}']:.0%} for popularity and "
                if "popularity" in m
                else ""
            )
            + (
                f"{m['random'][f'revenue_share_of_oracle@{k0}']:.0%} for a random ranking."
                if "random" in m
                else "nothing else."
            ),
        )
    )
    return "".join(parts)


def _fusion_section(result: EvaluationResult, currency: str) -> str:
    m = result.metrics.get("fusion")
    if not m:
        return _not_evaluated("the model has no CTR task, or the data has no true click probabilities to value it.")
    w = m["weights"]
    k = m["k"]
    parts = [
        (
            '<p class="note">The ranking stage (the <code>rank</code> signature) retrieves '
            f"{m['candidates']} candidates per query by the two-tower score and orders them by the fused objective "
            "v = c log(ctr) + r relevance / max + p log(price) + u log(1 + user value) log(price), with "
            f"c = {w['click_weight']:g}, r = {w['relevance_weight']:g}, u = {w['value_weight']:g} and the price "
            f"weight p swept. Each setting's top {k} is valued as in the business section ({m['queries']:,} test "
            "queries, true click probabilities, per 1,000 queries). The oracle ranks the whole catalog by "
            "log(true P(click)) + p log(price): p = 0 is the clicks oracle, p = 1 the revenue oracle, and its "
            "points trace the most revenue achievable at each level of clicks (the frontier). &ldquo;share at the "
            "same clicks&rdquo; is the model's revenue over the frontier's at the model's expected clicks.</p>"
        )
    ]
    rows = [
        [
            f"{point['price_weight']:g}",
            point["clicks"],
            point["revenue"],
            point["frontier_revenue"],
            point["revenue_share_at_same_clicks"],
        ]
        for point in m["model"]
    ]
    parts.append(
        _table(
            [
                "price weight p",
                f"expected clicks@{k}",
                f"expected revenue@{k} ({currency})",
                "frontier revenue at these clicks",
                "share at the same clicks",
            ],
            rows,
        )
    )
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    for name, colour in (("oracle", _colour("oracle")), ("model", _colour("model"))):
        points = m[name]
        ax.plot([p["clicks"] for p in points], [p["revenue"] for p in points], "o-", color=colour, label=_label(name))
        for point in points:
            ax.annotate(f"{point['price_weight']:g}", (point["clicks"], point["revenue"]), fontsize=7)
    ax.set(
        title=f"Clicks against revenue in the top {k} (labels: price weight p)",
        xlabel=f"expected clicks@{k} per 1,000 queries",
        ylabel=f"expected revenue@{k} per 1,000 queries ({currency})",
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    parts.append(
        _figure(
            fig,
            f"The model's revenue-maximising setting (p = {m['best_price_weight']:g}) earns "
            f"{m['best_revenue_share']:.0%} of the oracle's best revenue; along its curve the model earns at least "
            f"{m['min_revenue_share_at_same_clicks']:.0%} of what the frontier earns at the same clicks.",
        )
    )
    return "".join(parts)


def _intent_section(result: EvaluationResult) -> str:
    m = result.metrics.get("intent")
    if not m:
        return _not_evaluated("the model has no query-intent task, or the data has no planted intent.")
    parts = [
        (
            '<p class="note">The query-intent head (the <code>query_intent</code> signature) predicts the '
            f"distribution over the {m['categories']} item categories a query leads to. Its truth, for each of "
            f"{m['queries']:,} test queries, is the simulator's planted intent: the category mix of the clicks the "
            "query would give if every item were shown first (the true category is its argmax; the planted "
            f"distribution gives it {m['planted_top_share']:.0%} on average). Top-1: the predicted most likely "
            "category is the true one; top-3: the true one is among the 3 most likely; total variation: half the "
            "summed absolute difference to the planted distribution (0 = exact, 1 = disjoint). Baselines: the "
            "majority category of training clicks (their category shares as its distribution) and the categories "
            "of the model's own retrieval over the catalog (top-1: the category of the top retrieved item; its "
            f"distribution: the category mix of the top {m['depth']}).</p>"
        ),
        _scorer_table(
            m,
            [("top1", "top-1 accuracy"), ("top3", "top-3 accuracy"), ("total_variation", "total variation")],
        ),
    ]
    scorers = [k for k, v in m.items() if isinstance(v, dict)]
    fig = Figure(figsize=(6.4, 3.8), layout="constrained")
    ax = fig.subplots()
    x = np.arange(2)
    width = 0.8 / len(scorers)
    for i, name in enumerate(scorers):
        ax.bar(
            x + (i - (len(scorers) - 1) / 2) * width,
            [m[name]["top1"], m[name]["top3"]],
            width=width,
            color=_colour(name),
            label=_label(name),
        )
    ax.set(
        title="Planted intent category found",
        ylabel="share of test queries",
        xticks=x,
        xticklabels=["top-1", "top-3"],
        ylim=(0, 1),
    )
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    model, major, top = m["model"], m.get("majority", {}), m.get("top_retrieved", {})
    parts.append(
        _figure(
            fig,
            f"The predicted most likely category is the planted one for {model['top1']:.0%} of test queries "
            f"(top-3: {model['top3']:.0%}), against {major.get('top1', float('nan')):.0%} for the majority category "
            f"and {top.get('top1', float('nan')):.0%} for the category of the top retrieved item.",
        )
    )
    return "".join(parts)


def ab_section_html(m: dict, candidate: str = "model") -> str:
    """The offline A/B section of an `off_policy_report` (plus `true_online` / `true_logging` where known)."""
    rewards = [r for r in ("click", "purchase_value") if r in m]
    truth, true_logging = m.get("true_online", {}), m.get("true_logging", {})
    parts = [
        (
            f'<p class="note">{html.escape(candidate)} re-ranks the items of each of {m["sessions"]:,} logged '
            "sessions; its expected reward per session is estimated from the logged impressions and the logging "
            "policy's propensities (the probability it showed each item at each position) with inverse propensity "
            "scoring (IPS), self-normalised IPS (SNIPS) and doubly robust (DR, the candidate's click model as "
            "reward model), under the item-position click model. Intervals: 95% bootstrap over sessions; lift: "
            "minus the logging policy's logged mean, paired. ESS: effective sample size (rows the estimate rests "
            f"on) {m['ess']:,.0f} of {m['rows']:,}."
            + (" The true online value is the simulator's planted expectation for the same rankings." if truth else "")
            + "</p>"
        )
    ]
    rows = []
    for reward in rewards:
        block = m[reward]
        rows.append(
            [
                reward,
                "logging policy (logged)",
                block["logging"]["value"],
                f"{block['logging']['ci_low']:.4g} - {block['logging']['ci_high']:.4g}",
                "-",
                "-",
                true_logging.get(reward, "-"),
            ]
        )
        for name in ("ips", "snips", "dr"):
            e = block[name]
            rows.append(
                [
                    reward,
                    name.upper(),
                    e["value"],
                    f"{e['ci_low']:.4g} - {e['ci_high']:.4g}",
                    f"{e['lift']:+.4g} ({e['relative_lift']:+.1%})",
                    f"{e['lift_ci_low']:+.4g} - {e['lift_ci_high']:+.4g}",
                    truth.get(reward, "-"),
                ]
            )
    parts.append(
        _table(
            ["reward per session", "estimator", "estimate", "95% interval", "lift", "lift 95% interval", "true online"],
            rows,
        )
    )
    fig = Figure(figsize=(4.2 * len(rewards), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(rewards)))
    names = ["logging", "ips", "snips", "dr"]
    for ax, reward in zip(axes, rewards):
        block = m[reward]
        values = [block[n]["value"] for n in names]
        low = [block[n]["value"] - block[n]["ci_low"] for n in names]
        high = [block[n]["ci_high"] - block[n]["value"] for n in names]
        ax.errorbar(np.arange(4), values, yerr=[low, high], fmt="o", capsize=4, color=_colour("model"))
        if reward in truth:
            ax.axhline(truth[reward], color=_colour("oracle") or "#2ca02c", ls="--", label="true online (candidate)")
        if reward in true_logging:
            ax.axhline(true_logging[reward], color="#7f7f7f", ls=":", label="true online (logging policy)")
        ax.set(
            title=f"{reward.replace('_', ' ')} per session",
            xticks=np.arange(4),
            xticklabels=["logged", "IPS", "SNIPS", "DR"],
            ylabel=f"expected {reward.replace('_', ' ')} per session",
        )
        ax.grid(axis="y", alpha=0.3)
        if truth or true_logging:
            ax.legend(fontsize=7)
    dr = m[rewards[0]]["dr"]
    parts.append(
        _figure(
            fig,
            f"Estimates with 95% intervals: the candidate's DR estimate of {rewards[0].replace('_', ' ')} per "
            f"session is {dr['value']:.4g}, {dr['relative_lift']:+.1%} against the logging policy's logged mean.",
        )
    )
    warnings = {m[r][n]["warning"] for r in rewards for n in ("ips", "snips", "dr") if m[r][n]["warning"]}
    for warning in sorted(warnings):
        parts.append(f'<p class="note"><strong>Warning:</strong> {html.escape(warning)}</p>')
    return "".join(parts)


def html_page(title: str, body: str) -> str:
    """A self-contained page in the report's style around `body` (HTML)."""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def _ab_section(result: EvaluationResult) -> str:
    m = result.metrics.get("ab")
    if not m:
        return _not_evaluated("the logs have no propensities, or the model has no CTR task to rank with.")
    return ab_section_html(m)


def _summary_rows(result: EvaluationResult) -> list:
    """Headline numbers: model, best baseline, oracle."""
    mt, ks = result.metrics, result.ks
    k_mid = ks[len(ks) // 2]
    rows = []

    def add(label, section, key, baseline, higher=True):
        s = mt.get(section)
        if not s or "model" not in s:
            return
        model, oracle = s["model"].get(key), s.get("oracle", {}).get(key)
        base = s.get(baseline, {}).get(key)
        rows.append(
            [
                label,
                model,
                base if base is not None else "-",
                _label(baseline) if base is not None else "",
                oracle if oracle is not None else "-",
            ]
        )

    add("CTR AUC (higher is better)", "ctr", "auc", "popularity")
    add("CTR expected calibration error (lower is better)", "ctr", "ece", "popularity")
    add(f"Recall@{k_mid}", "retrieval", f"recall@{k_mid}", "popularity")
    add(f"NDCG@{k_mid}", "retrieval", f"ndcg@{k_mid}", "popularity")
    add("User value normalised Gini", "value", "normalized_gini", "segment_mean")
    add("User value decile MAPE (lower is better)", "value", "decile_mape", "segment_mean")
    add("Query intent top-1 accuracy", "intent", "top1", "top_retrieved")
    b = mt.get("business")
    if b and "model" in b:
        k0 = b["ks"][0]
        base = "popularity" if "popularity" in b else "random"
        for key, oracle in (("clicks", "oracle_clicks"), ("revenue", "oracle_revenue")):
            rows.append(
                [
                    f"Expected {key}@{k0} per 1,000 queries",
                    b["model"][f"{key}@{k0}"],
                    b.get(base, {}).get(f"{key}@{k0}", "-"),
                    _label(base) if base in b else "",
                    b[oracle][f"{key}@{k0}"],
                ]
            )
    return rows


def render_report(result: EvaluationResult, title: str = "tfrec evaluation report") -> str:
    """The report as one HTML string (no external files, scripts or styles)."""
    currency = result.context.get("currency", "currency units")
    context = {k: v for k, v in result.context.items() if k != "currency"}
    context.setdefault("generated", datetime.datetime.now().strftime("%Y-%m-%d %H:%M"))
    header = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in context.items())
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f"<dl>{header}</dl>",
        '<h2 id="summary">Summary</h2>',
        (
            '<p class="note">The headline numbers; each section below explains its metrics and shows the curves. '
            "The oracle scores with the true probabilities and values where the data has them (the best "
            "achievable).</p>"
        ),
        _table(["metric", "model", "baseline", "baseline is", "oracle"], _summary_rows(result)),
    ]
    renderers = {
        "ctr": lambda: _ctr_section(result),
        "value": lambda: _value_section(result, currency),
        "retrieval": lambda: _retrieval_section(result),
        "business": lambda: _business_section(result, currency),
        "fusion": lambda: _fusion_section(result, currency),
        "ab": lambda: _ab_section(result),
        "intent": lambda: _intent_section(result),
    }
    for key, heading in SECTIONS.items():
        body.append(f'<section id="{key}"><h2>{html.escape(heading)}</h2>{renderers[key]()}</section>')
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>"
    )


def write_report(result: EvaluationResult, path, title: str = "tfrec evaluation report") -> str:
    """Writes `render_report(result)` to `path`; returns the path."""
    text = render_report(result, title)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return str(path)
