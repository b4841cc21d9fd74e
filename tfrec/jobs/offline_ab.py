"""`tfrec ab`: an offline A/B test of a model (run directory or export) on logged impressions.

The logs are the impressions of a stochastic logging policy: the model's
schema columns, `session_id`, `position`, `propensity` (P(the logging policy
showed this item at this position)), `click` and optionally `purchase_value`.
The candidate (and an optional baseline) ranks each session's logged items by
its CTR at the top position (its `score` signature's `ctr`; the two-tower
`score` where it has no CTR head), and `tfrec.evaluation.off_policy` estimates
its clicks and purchase value per session with IPS, SNIPS and DR (the model's
CTR as reward model, its examination curve calibrated on the logs), with
bootstrap intervals and the lift over the logging policy.

Example:

```python
result = offline_ab(["logs.parquet"], "runs/quickstart", output_dir="ab")
result["candidate"]["click"]["dr"]["value"]     # expected clicks per session
```
"""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd

from tfrec.data.readers import expand_data_paths, read_file
from tfrec.evaluation.off_policy import off_policy_report, position_reward_model, rank_positions
from tfrec.evaluation.report import ab_section_html, html_page
from tfrec.jobs.predict import load_model
from tfrec.models.inference import features_of

LOG_COLUMNS = ("session_id", "position", "propensity", "click")


def read_logs(paths) -> pd.DataFrame:
    """The logged impressions of `paths` (CSV/parquet files, globs or folders), checked for the columns OPE needs."""
    files = expand_data_paths(paths)
    logs = pd.concat([read_file(f) for f in files], ignore_index=True)
    missing = [c for c in LOG_COLUMNS if c not in logs.columns]
    if missing:
        raise ValueError(
            f"tfrec ab: the logs ({', '.join(files)}) have no column(s) {missing}; an offline A/B needs "
            f"{list(LOG_COLUMNS)} per impression (propensity: the probability the logging policy showed that "
            "item at that position)"
        )
    for column in ("position", "propensity", "click", "purchase_value"):
        if column in logs.columns:
            logs[column] = pd.to_numeric(logs[column], errors="coerce")
    return logs


def model_ranking_scores(path: str, logs: pd.DataFrame, batch_size: int = 4096):
    """`(ranking score, ctr or None, schema)` per logged row: the `score` signature of `path` (position 1)."""
    loaded = load_model(path)
    scorer = loaded.scorer("score")
    features = features_of(logs, loaded.schema, scorer.inputs)
    parts = []
    for start in range(0, len(logs), batch_size):
        parts.append(scorer({k: v[start : start + batch_size] for k, v in features.items()}))
    out = {k: np.concatenate([p[k] for p in parts]).reshape(-1) for k in parts[0]}
    ctr = out.get("ctr")
    return (ctr if ctr is not None else out["score"]), ctr, loaded.schema


def _estimate(logs, path, rewards, resamples, seed):
    score, ctr, schema = model_ranking_scores(path, logs)
    positions = rank_positions(score, logs.session_id)
    reward_model = None
    if ctr is not None:
        reward_model = {"click": position_reward_model(ctr, logs)}
        if "purchase_value" in rewards:
            price_column = schema.item_price
            clicked_value = float(logs.purchase_value.sum())
            if price_column and price_column in logs.columns:
                price = pd.to_numeric(logs[price_column], errors="coerce").fillna(0).to_numpy(np.float64)
                clicked_price = float((logs.click * price).sum())
                value = price * (clicked_value / clicked_price if clicked_price > 0 else 0.0)
            else:
                value = np.full(len(logs), clicked_value / max(float(logs.click.sum()), 1.0))
            reward_model["purchase_value"] = position_reward_model(ctr, logs, value=value)
    return off_policy_report(logs, positions, rewards, reward_model=reward_model, resamples=resamples, seed=seed)


def offline_ab(
    logs, candidate: str, baseline: str | None = None, output_dir: str | None = None, resamples=1000, seed=0
) -> dict:
    """Estimates `candidate`'s (and `baseline`'s) clicks and purchase value per session on `logs`.

    Args:
        logs: files, globs or folders of logged impressions, or a DataFrame.
        candidate, baseline: run directories or SavedModel exports.
        output_dir: where `ab.json`, `ab.md` and `ab.html` go (None: nothing written).
        resamples, seed: of the bootstrap.
    """
    frame = logs if isinstance(logs, pd.DataFrame) else read_logs(logs)
    frame = frame.reset_index(drop=True)
    rewards = ["click"] + (["purchase_value"] if "purchase_value" in frame.columns else [])
    result: dict = {"logs": len(frame), "candidate_path": candidate}
    result["candidate"] = _estimate(frame, candidate, rewards, resamples, seed)
    if baseline is not None:
        result["baseline_path"] = baseline
        result["baseline"] = _estimate(frame, baseline, rewards, resamples, seed)
    if output_dir is not None:
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, "ab.json"), "w") as f:
            json.dump(result, f, indent=2, default=float)
        with open(os.path.join(output_dir, "ab.md"), "w") as f:
            f.write(format_table(result) + "\n")
        sections = [f"<h2>candidate: {candidate}</h2>" + ab_section_html(result["candidate"], "The candidate")]
        if baseline is not None:
            sections.append(f"<h2>baseline: {baseline}</h2>" + ab_section_html(result["baseline"], "The baseline"))
        with open(os.path.join(output_dir, "ab.html"), "w", encoding="utf-8") as f:
            f.write(html_page("tfrec offline A/B", "".join(sections)))
    return result


def format_table(result: dict) -> str:
    """A markdown table: per model, reward and estimator: value, 95% interval, lift over logging, ESS."""
    lines = [
        "| model | reward per session | estimator | value | 95% interval | lift over logging | lift 95% interval "
        "| ESS |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for who in ("candidate", "baseline"):
        if who not in result:
            continue
        block = result[who]
        for reward in ("click", "purchase_value"):
            if reward not in block:
                continue
            logged = block[reward]["logging"]
            lines.append(
                f"| logging policy | {reward} | logged | {logged['value']:.4g} | "
                f"{logged['ci_low']:.4g} - {logged['ci_high']:.4g} | | | |"
            )
            for name in ("ips", "snips", "dr"):
                e = block[reward][name]
                lines.append(
                    f"| {who} | {reward} | {name.upper()} | {e['value']:.4g} | {e['ci_low']:.4g} - {e['ci_high']:.4g} "
                    f"| {e['relative_lift']:+.1%} | {e['lift_ci_low']:+.4g} - {e['lift_ci_high']:+.4g} "
                    f"| {e['ess']:,.0f} |"
                )
        warnings = {block[r][n]["warning"] for r in ("click", "purchase_value") if r in block for n in ("ips",)}
        lines += [f"\nWarning ({who}): {w}" for w in warnings if w]
    return "\n".join(lines)
