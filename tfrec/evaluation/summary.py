"""The one-screen terminal summary of an evaluation.

Example:

```python
print(format_summary(result.metrics, ks=[10, 50, 100]))
```
"""

from __future__ import annotations


def _row(label, values, note="", fmt="{:>10.4f}"):
    cells = "".join(fmt.format(v) if v is not None else f"{'-':>10}" for v in values)
    return f"{label:<28}{cells}   {note}".rstrip()


def format_summary(metrics: dict, ks) -> str:
    """Model vs oracle vs baseline for every section present in `metrics` (about 25 lines)."""
    ks = list(ks)
    k_mid = ks[len(ks) // 2]
    lines = ["", f"{'metric':<28}{'model':>10}{'oracle':>10}{'baseline':>10}   baseline"]
    ctr = metrics.get("ctr")
    if ctr:
        lines.append(_row("CTR AUC", [ctr[n]["auc"] for n in ("model", "oracle", "popularity")],
                          "item CTR x position"))
        lines.append(_row("CTR log loss", [ctr[n]["log_loss"] for n in ("model", "oracle", "popularity")]))
        lines.append(_row("CTR ECE", [ctr[n]["ece"] for n in ("model", "oracle", "popularity")]))
    ret = metrics.get("retrieval")
    if ret:
        for k in ks:
            lines.append(_row(f"Recall@{k}", [ret[n][f"recall@{k}"] for n in ("model", "oracle", "popularity")],
                              "popularity"))
        lines.append(_row(f"NDCG@{k_mid}", [ret[n][f"ndcg@{k_mid}"] for n in ("model", "oracle", "popularity")]))
        lines.append(_row("MRR", [ret[n]["mrr"] for n in ("model", "oracle", "popularity")]))
    val = metrics.get("value")
    if val:
        for key, label in (("normalized_gini", "Value normalised Gini"), ("spearman", "Value Spearman"),
                           ("spend_auc", "Value AUC(spends at all)"), ("decile_mape", "Value decile MAPE")):
            lines.append(_row(label, [val[n][key] for n in ("model", "oracle", "segment_mean")], "segment mean"))
    bus = metrics.get("business")
    if bus:
        k = 10 if 10 in bus["ks"] else bus["ks"][0]
        lines.append(f"Business value per 1,000 queries, top {k} (oracle = ranked by the truth):")
        for key, oracle, label in (("clicks", "oracle_clicks", f"Expected clicks@{k}"),
                                   ("revenue", "oracle_revenue", f"Expected revenue@{k}")):
            share = bus["model"][f"{key}_share_of_oracle@{k}"]
            lines.append(_row(label, [bus[n][f"{key}@{k}"] for n in ("model", oracle, "popularity")],
                              f"popularity; random {bus['random'][f'{key}@{k}']:,.1f}; model gets {share:.0%} "
                              "of the oracle's", fmt="{:>10,.1f}"))
    return "\n".join(lines)


def print_summary(metrics: dict, ks) -> None:
    print(format_summary(metrics, ks), flush=True)
