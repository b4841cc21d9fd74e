"""What an evaluation leaves behind: the terminal summary and `metrics.json`.

`format_summary` is the model / oracle / baseline screen of simulator runs;
`summary_lines` the model-beside-its-baselines tables of runs on the user's
own tables (`tfrec.evaluation.tables`), ending with the plain verdict of
`versus_baselines` (e.g. "search: model below BM25 on NDCG@10 by 0.013");
`write_metrics` writes `metrics.json` for both.

Example:

```python
print(format_summary(result.metrics, ks=[10, 50, 100]))
print("\n".join(summary_lines(tables_metrics)))
versus_baselines(tables_metrics)["lines"]
write_metrics(metrics, "runs/quickstart")
```
"""

from __future__ import annotations

import json
import math
import os


def write_metrics(metrics: dict, directory) -> str:
    """Writes `metrics` to `directory/metrics.json` (numpy numbers as floats); returns the path."""
    path = os.path.join(directory, "metrics.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(metrics, f, indent=2, default=float)
    return path


def _row(label, values, note="", fmt="{:>10.4f}"):
    cells = "".join(fmt.format(v) if v is not None else f"{'-':>10}" for v in values)
    return f"{label:<28}{cells}   {note}".rstrip()


def _scorers(section: dict, baseline: str) -> tuple[list, str]:
    """(model, oracle, baseline) names in `section` (None where absent) and the baseline's name."""
    names = [k for k, v in section.items() if isinstance(v, dict)]
    chosen: str | None = baseline
    if chosen not in names:
        others = [n for n in names if n not in ("model", "oracle")]
        chosen = others[0] if others else None
    return [n if n in names else None for n in ("model", "oracle")] + [chosen], (chosen or "")


def _values(section, names, key):
    return [section[n].get(key) if n else None for n in names]


def format_summary(metrics: dict, ks) -> str:
    """Model vs oracle vs baseline for every section present in `metrics` (about 25 lines).

    A section without an oracle (real data) shows `-` there; the baseline is
    the usual one (`popularity`, `segment_mean`) or else the first other scorer.
    """
    ks = list(ks)
    k_mid = ks[len(ks) // 2]
    lines = ["", f"{'metric':<28}{'model':>10}{'oracle':>10}{'baseline':>10}   baseline"]
    ctr = metrics.get("ctr")
    if ctr:
        names, base = _scorers(ctr, "popularity")
        note = "item CTR x position" if base == "popularity" else base
        lines.append(_row("CTR AUC", _values(ctr, names, "auc"), note))
        lines.append(_row("CTR log loss", _values(ctr, names, "log_loss")))
        lines.append(_row("CTR ECE", _values(ctr, names, "ece")))
    ret = metrics.get("retrieval")
    if ret:
        names, base = _scorers(ret, "popularity")
        for k in ks:
            lines.append(_row(f"Recall@{k}", _values(ret, names, f"recall@{k}"), base))
        lines.append(_row(f"NDCG@{k_mid}", _values(ret, names, f"ndcg@{k_mid}")))
        lines.append(_row("MRR", _values(ret, names, "mrr")))
    val = metrics.get("value")
    if val:
        names, base = _scorers(val, "segment_mean")
        for key, label in (
            ("normalized_gini", "Value normalised Gini"),
            ("spearman", "Value Spearman"),
            ("spend_auc", "Value AUC(spends at all)"),
            ("decile_mape", "Value decile MAPE"),
        ):
            lines.append(_row(label, _values(val, names, key), base.replace("_", " ")))
    bus = metrics.get("business")
    if bus:
        k = 10 if 10 in bus["ks"] else bus["ks"][0]
        lines.append(f"Business value per 1,000 queries, top {k} (oracle = ranked by the truth):")
        for key, oracle, label in (
            ("clicks", "oracle_clicks", f"Expected clicks@{k}"),
            ("revenue", "oracle_revenue", f"Expected revenue@{k}"),
        ):
            share = bus["model"][f"{key}_share_of_oracle@{k}"]
            lines.append(
                _row(
                    label,
                    [bus[n][f"{key}@{k}"] for n in ("model", oracle, "popularity")],
                    f"popularity; random {bus['random'][f'{key}@{k}']:,.1f}; model gets {share:.0%} of the oracle's",
                    fmt="{:>10,.1f}",
                )
            )
    fusion = metrics.get("fusion")
    if fusion:
        lines.append(
            f"Ranking stage, top {fusion['k']} of {fusion['candidates']} candidates by c log(ctr) + p log(price): "
            f"best revenue at p = {fusion['best_price_weight']:g} is {fusion['best_revenue_share']:.0%} of the "
            f"oracle's; at least {fusion['min_revenue_share_at_same_clicks']:.0%} of the frontier's revenue at the "
            "same clicks along the curve"
        )
    ab = metrics.get("ab")
    if ab:
        for reward in ("click", "purchase_value"):
            dr, logged = ab[reward]["dr"], ab[reward]["logging"]["value"]
            truth = ab.get("true_online", {}).get(reward)
            lines.append(
                f"Offline A/B, {reward} per session: logging {logged:,.3f}, model (DR) {dr['value']:,.3f} "
                f"[{dr['ci_low']:,.3f}, {dr['ci_high']:,.3f}], lift {dr['relative_lift']:+.1%}"
                + (f"; true online {truth:,.3f}" if truth is not None else "")
            )
    intent = metrics.get("intent")
    if intent:
        major, top = intent["majority"], intent["top_retrieved"]
        for key, label in (("top1", "Intent top-1 accuracy"), ("top3", "Intent top-3 accuracy")):
            note = f"majority category {major[key]:.4f}; category of the top retrieved item {top[key]:.4f}"
            lines.append(_row(label, [intent["model"][key], None, major[key]], note))
    return "\n".join(lines)


def print_summary(metrics: dict, ks) -> None:
    print(format_summary(metrics, ks), flush=True)


def summary_lines(metrics: dict) -> list[str]:
    """The model and its baselines of a run on tables, one metric per line (`metrics.json` layout)."""
    lines = []

    def table(title, block, keys):
        names = [n for n, v in block.items() if isinstance(v, dict)]
        lines.append(f"{title:<22}" + "".join(f"{n:>20}" for n in names))
        for key in keys:
            lines.append(f"  {key:<20}" + "".join(f"{block[n].get(key, float('nan')):>20.4f}" for n in names))

    if "value" in metrics:
        v = metrics["value"]
        table(
            f"user value ({v['customers']} customers)",
            v,
            ["normalized_gini", "spearman", "decile_mape", "spend_auc", "mean_predicted"],
        )
    for part in ("search", "interactions"):
        if part not in metrics:
            continue
        block = metrics[part]
        for head, keys in (("ctr", ["auc", "log_loss"]), ("relevance", ["rmse", "auc"])):
            if head in block:
                table(head, block[head], [k for k in keys if k in block[head]["model"]])
        if "query_ndcg" in block:
            qn = block["query_ndcg"]
            table(f"per-query ({qn['queries_scored']} queries)", qn, list(qn["model"]))
        r = block["retrieval"]
        table(f"retrieval ({r['queries']} queries)", r, list(r["model"]))
    stored = metrics.get("versus_baselines") or {}
    verdict = versus_baselines(metrics, stored.get("skipped"))
    if verdict["lines"] or verdict["skipped"]:
        lines.append("versus baselines:")
        lines += [f"  {line}" for line in verdict["lines"]]
        lines += [f"  not computed: {name} ({why})" for name, why in verdict["skipped"].items()]
    return lines


#: How the verdict names the scorers of metrics.json.
BASELINE_NAMES = {
    "popularity": "popularity",
    "logged_order": "the logged order",
    "item_mean": "the item mean",
    "global_mean": "the global mean",
    "bm25": "BM25",
    "bm25_calibrated": "calibrated BM25",
    "minilm_cosine": "zero-shot MiniLM cosine",
    "cooccurrence": "item co-occurrence",
    "calibration_scaled": "the calibration spend scaled to the horizon",
    "rfm": "RFM ridge regression",
    "bg_nbd_gamma_gamma": "BG/NBD + Gamma-Gamma",
    "rfm_gbm": "gradient boosting on RFM",
}

# (metrics.json part, section (None: the part itself), metric, higher is better, label); per part the first
# one the model has is the main metric, which always gets a line; the others get one only where the model loses.
_CHECKS = (
    ("search", "query_ndcg", "ndcg@{k}", True, "NDCG@{k}"),
    ("search", "retrieval", "recall@{k}", True, "retrieval Recall@{k}"),
    ("search", "relevance", "rmse", False, "relevance RMSE"),
    ("search", "ctr", "auc", True, "CTR AUC"),
    ("interactions", "retrieval", "recall@{k}", True, "Recall@{k}"),
    ("interactions", "ctr", "auc", True, "CTR AUC"),
    ("value", None, "normalized_gini", True, "normalised Gini"),
    ("value", None, "spearman", True, "Spearman"),
)
_PART_NAMES = {"search": "search", "interactions": "interactions", "value": "user value"}


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _metric_key(model: dict, pattern: str) -> str | None:
    """`pattern` with its K: 10 if the run has it, else the smallest K."""
    if "{k}" not in pattern:
        return pattern if pattern in model else None
    prefix = pattern.split("{k}")[0]
    ks = sorted(int(key[len(prefix) :]) for key in model if key.startswith(prefix) and key[len(prefix) :].isdigit())
    if not ks:
        return None
    return pattern.format(k=10 if 10 in ks else ks[0])


def _by(margin: float) -> str:
    return f"{margin:.3f}" if margin >= 0.0005 else f"{margin:.1e}"


def versus_baselines(metrics: dict, skipped: dict | None = None) -> dict:
    """The model against every baseline on each part's key metrics, in plain words.

    Returns `{"lines": [...], "checks": [...], "skipped": {baseline: why}}`:
    one line per part on its main metric (NDCG@10 per query for search,
    Recall@10 for interactions, normalised Gini for user value; K = 10 or
    the run's smallest), saying by how much the model is below each baseline
    that beats it, or that it beats them all; and a line for each other
    metric where it loses. `checks` has the numbers: per metric the model's
    value, each baseline's, and `below` (baseline -> margin).
    """
    lines: list[str] = []
    checks: list[dict] = []
    for part, section_name, pattern, higher, label_pattern in _CHECKS:
        block = metrics.get(part)
        section = block if section_name is None else (block or {}).get(section_name)
        if not isinstance(section, dict) or not isinstance(section.get("model"), dict):
            continue
        key = _metric_key(section["model"], pattern)
        if key is None or not _finite(section["model"].get(key)):
            continue
        main = not any(c["part"] == part for c in checks)
        label = label_pattern.format(k=key.split("@")[-1]) + ("" if higher else " (lower is better)")
        model = float(section["model"][key])
        values = {
            name: float(v[key])
            for name, v in section.items()
            if name not in ("model", "oracle") and isinstance(v, dict) and _finite(v.get(key))
        }
        sign = 1.0 if higher else -1.0
        below = {name: sign * (v - model) for name, v in values.items() if sign * (v - model) > 0}
        below = dict(sorted(below.items(), key=lambda kv: -kv[1]))
        checks.append(
            {
                "part": part,
                "section": section_name or part,
                "metric": key,
                "higher_is_better": higher,
                "main": main,
                "model": model,
                "baselines": values,
                "below": below,
            }
        )
        head = _PART_NAMES[part]
        if below:
            said = [
                (BASELINE_NAMES.get(name, name), f"by {_by(m)} ({model:.4f} vs {values[name]:.4f})")
                for name, m in below.items()
            ]
            also = "" if main else "also "
            lines.append(
                f"{head}: model {also}below {said[0][0]} on {label} {said[0][1]}"
                + "".join(f"; below {name} {by}" for name, by in said[1:])
            )
        elif main and values:
            best = max(values, key=lambda n: sign * values[n])
            verb = "beats every baseline" if sign * (model - values[best]) > 0 else "is level with the best baseline"
            lines.append(
                f"{head}: model {verb} on {label} ({model:.4f}; best baseline "
                f"{BASELINE_NAMES.get(best, best)} {values[best]:.4f})"
            )
        elif main:
            lines.append(f"{head}: no baseline has {label} to compare the model ({model:.4f}) with")
    return {"lines": lines, "checks": checks, "skipped": dict(skipped or {})}
