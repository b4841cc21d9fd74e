"""Coverage of the offline A/B (off-policy) intervals: do they hold a new ranking's true online value?

For each seed the simulator logs sessions with its Plackett-Luce ranker (and
its propensities); a candidate re-ranks each session's logged items by a noisy
view of the true attractiveness (a better ranker than the logging one), and
price-weighted for revenue. Its true online value is computed from the planted
truth: sum over a session's items of `position ** -position_bias x P(click |
seen)` (clicks) and that times the expected purchase value of a click
(revenue). IPS, SNIPS and DR (reward model: a noisy click model calibrated per
position on the logs) estimate it from the logs with 95% bootstrap intervals.

Usage: python benchmarks/off_policy_coverage.py [--seeds 30] [--sessions 3000]
    [--output benchmarks/results/off_policy_coverage.md]
Prints, per reward and estimator, coverage of the 95% interval, mean relative bias
and RMSE relative to the true value.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import machine_info  # noqa: E402

from tfrec.data.simulator import SimulatorConfig, simulate  # noqa: E402
from tfrec.evaluation.off_policy import ESTIMATORS, off_policy_report, position_reward_model, rank_positions  # noqa: E402


def one_seed(seed, sessions, slate, resamples):
    sim = simulate(SimulatorConfig(num_users=600, num_items=400, num_sessions=sessions, slate_size=slate, seed=seed))
    imp = sim.impressions
    rng = np.random.default_rng(1000 + seed)
    a = imp.true_attractiveness.to_numpy()
    value = imp.true_purchase_value_if_clicked.to_numpy()
    noisy = np.log(a) + rng.normal(0, 0.5, len(imp))
    out = {}
    for reward, score in (("click", noisy), ("purchase_value", noisy + np.log(imp.item_price.to_numpy()))):
        positions = rank_positions(score, imp.session_id)
        exam = positions.astype(float) ** -sim.config.position_bias
        per_row = exam * a * (value if reward == "purchase_value" else 1.0)
        truth = float(pd.Series(per_row).groupby(imp.session_id.to_numpy()).sum().mean())
        ctr = a * np.exp(rng.normal(0, 0.3, len(imp)))
        model = position_reward_model(ctr, imp, value=value if reward == "purchase_value" else None)
        report = off_policy_report(
            imp, positions, [reward], reward_model={reward: model}, resamples=resamples, seed=seed
        )
        out[reward] = {"truth": truth, "logging": report[reward]["logging"]["value"], "ess": report["ess"]}
        for name in ESTIMATORS:
            e = report[reward][name]
            out[reward][name] = {"value": e["value"], "covered": e["ci_low"] <= truth <= e["ci_high"]}
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=3000)
    parser.add_argument("--slate", type=int, default=8)
    parser.add_argument("--resamples", type=int, default=500)
    parser.add_argument("--output", default=None, help="markdown file for the table")
    args = parser.parse_args()
    t0 = time.time()
    runs = [one_seed(s, args.sessions, args.slate, args.resamples) for s in range(args.seeds)]
    rows = []
    summary = {}
    for reward in ("click", "purchase_value"):
        truth = np.array([r[reward]["truth"] for r in runs])
        for name in ESTIMATORS:
            est = np.array([r[reward][name]["value"] for r in runs])
            cover = float(np.mean([r[reward][name]["covered"] for r in runs]))
            bias = float(np.mean((est - truth) / truth))
            rmse = float(np.sqrt(np.mean(((est - truth) / truth) ** 2)))
            summary[f"{reward}/{name}"] = {"coverage": cover, "relative_bias": bias, "relative_rmse": rmse}
            rows.append(f"| {reward} | {name} | {cover:.0%} | {bias:+.2%} | {rmse:.2%} |")
        lift = np.mean([(r[reward]["truth"] - r[reward]["logging"]) / r[reward]["logging"] for r in runs])
        summary[f"{reward}/true_lift_over_logging"] = float(lift)
    ess = float(np.mean([r["click"]["ess"] for r in runs]))
    info = machine_info()
    text = "\n".join(
        [
            "# Offline A/B: coverage of the 95% intervals on the simulator",
            "",
            f"Command: `python benchmarks/off_policy_coverage.py --seeds {args.seeds} --sessions {args.sessions} "
            f"--slate {args.slate} --resamples {args.resamples}` ({time.time() - t0:.0f} s; {info.get('cpu')}, "
            f"{info.get('cores')} cores).",
            "",
            f"{args.seeds} seeds (0..{args.seeds - 1}), each {args.sessions} sessions x {args.slate} slots, 600 users, "
            "400 items, logged by the simulator's Plackett-Luce ranker (temperature 1.2). Candidate: each session's "
            "logged items re-ranked by log P(click | seen) + N(0, 0.5) noise (clicks) and that + log price (revenue); "
            f"its true lift over the logging policy: {summary['click/true_lift_over_logging']:+.1%} clicks, "
            f"{summary['purchase_value/true_lift_over_logging']:+.1%} revenue. DR's reward model: P(click | seen) x "
            "lognormal noise (sigma 0.3), examination calibrated per position on the logs. "
            f"Mean effective sample size {ess:,.0f} of {args.sessions * args.slate:,} rows.",
            "",
            "| reward | estimator | 95% interval covers the true value | mean relative bias | relative RMSE |",
            "| --- | --- | ---: | ---: | ---: |",
            *rows,
            "",
        ]
    )
    print(text)
    print(json.dumps(summary, indent=2))
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
