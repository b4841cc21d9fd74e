"""What an evaluation leaves behind: the terminal summary and `metrics.json`.

`format_summary` is the model / oracle / baseline screen of simulator runs;
`summary_lines` the model-beside-its-baselines tables of runs on the user's
own tables (`tfrec.evaluation.tables`); `write_metrics` writes `metrics.json`
for both.

Example:

```python
print(format_summary(result.metrics, ks=[10, 50, 100]))
print("\n".join(summary_lines(tables_metrics)))
write_metrics(metrics, "runs/quickstart")
```
"""

from __future__ import annotations

import json
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
    return lines
