"""Coverage of the offline A/B (off-policy) intervals: do they hold a new ranking's true online value?

For each seed the simulator logs sessions with its Plackett-Luce ranker and
its exact propensities. Two candidates re-rank each session's logged items:
`attractive` by a noisy view of the true attractiveness (log P(click | seen)
+ N(0, 0.5), fixed per seed: better than the logging ranker) and `cheap`
by price, lowest first, with the same noise (worse for clicks and revenue).
The true online value of a candidate is computed from the planted truth,
given the logged sessions: the mean over sessions of `sum over items of
position ** -position_bias x P(click | seen)` (clicks) and that times the
expected purchase value of a click (revenue); the logging policy's is the same
sum weighted by its exact item-position probabilities
(`truth["logging_position_probabilities"]`), so the true lift is known too.
IPS, SNIPS and DR (reward model: P(click | seen) and the purchase value of a
click under lognormal noise, sigma 0.3, examination calibrated per position on
the logs) estimate the value per session from the logs with 95% bootstrap
intervals, and the lift over the logging policy with a paired interval.

Usage: python benchmarks/off_policy_coverage.py [--seeds 30] [--sessions 3000] [--users 500] [--items 300]
    [--slates 6,8,10] [--resamples 1000] [--output benchmarks/results/off_policy_coverage.md]
Prints (and writes, with --output) per candidate, reward and estimator: coverage of the 95% interval of the
value and of the lift, mean relative bias (with its standard error over seeds), relative RMSE and the mean
relative half-width of the interval; then the summary as JSON.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import machine_info  # noqa: E402

from tfrec.data.simulator import SimulatorConfig, simulate  # noqa: E402
from tfrec.evaluation.off_policy import ESTIMATORS, off_policy_report, position_reward_model, rank_positions  # noqa: E402

REWARDS = ("click", "purchase_value")
CANDIDATES = ("attractive", "cheap")


def one_seed(seed: int, sessions: int, users: int, items: int, slate: int, resamples: int) -> dict:
    """Truths and estimates of both candidates for one simulated log."""
    config = SimulatorConfig(num_users=users, num_items=items, num_sessions=sessions, slate_size=slate, seed=seed)
    sim = simulate(config)
    imp = sim.impressions
    rng = np.random.default_rng(1000 + seed)
    a = imp.true_attractiveness.to_numpy()
    v = imp.true_purchase_value_if_clicked.to_numpy()
    session = imp.session_id.to_numpy()
    codes = np.unique(session, return_inverse=True)[1]
    exam = np.arange(1, slate + 1) ** -sim.config.position_bias
    # Logging policy's truth: sum_i sum_p mu(i, p) e(p) a_i (v_i), items in logged order as the rows.
    mu = sim.truth["logging_position_probabilities"].astype(np.float64).reshape(len(imp), slate)
    logged = mu[np.arange(len(imp)), imp.position.to_numpy(np.int64) - 1]
    assert np.allclose(logged, imp.propensity.to_numpy(), rtol=1e-5), "truth and impressions are not aligned"
    logged_click = mu @ exam * a
    true_logging = {
        "click": float(logged_click.sum() / sessions),
        "purchase_value": float((logged_click * v).sum() / sessions),
    }
    # DR's reward model: the true attractiveness and purchase value under noise (one draw per seed).
    ctr = a * rng.lognormal(0, 0.3, len(imp))
    value = v * rng.lognormal(0, 0.3, len(imp))
    model = {"click": position_reward_model(ctr, imp), "purchase_value": position_reward_model(ctr, imp, value=value)}
    noise = rng.normal(0, 0.5, len(imp))
    scores = {"attractive": np.log(a) + noise, "cheap": -np.log(imp.item_price.to_numpy()) + noise}
    out = {"slate": slate, "true_logging": true_logging}
    for candidate, score in scores.items():
        positions = rank_positions(score, session)
        click = exam[positions - 1] * a
        truth = {
            "click": float(np.bincount(codes, click).mean()),
            "purchase_value": float(np.bincount(codes, click * v).mean()),
        }
        report = off_policy_report(imp, positions, REWARDS, reward_model=model, resamples=resamples, seed=seed)
        entry = {"truth": truth, "ess": report["ess"], "rows": report["rows"], "degenerate": report["degenerate"]}
        for reward in REWARDS:
            lift = truth[reward] - true_logging[reward]
            entry[reward] = {"logging": report[reward]["logging"]["value"]}
            for name in ESTIMATORS:
                e = report[reward][name]
                entry[reward][name] = {
                    "value": e["value"],
                    "half_width": (e["ci_high"] - e["ci_low"]) / 2,
                    "covered": e["ci_low"] <= truth[reward] <= e["ci_high"],
                    "lift_covered": e["lift_ci_low"] <= lift <= e["lift_ci_high"],
                    "lift_sign": np.sign(e["lift_ci_low"]) == np.sign(e["lift_ci_high"]) == np.sign(lift),
                }
        out[candidate] = entry
    return out


def summarise(runs: list) -> tuple[dict, list]:
    """`(summary, markdown rows)` over seeds."""
    summary, rows = {}, []
    for candidate in CANDIDATES:
        for reward in REWARDS:
            truth = np.array([r[candidate]["truth"][reward] for r in runs])
            logging_truth = np.array([r["true_logging"][reward] for r in runs])
            summary[f"{candidate}/{reward}/true_relative_lift"] = float(np.mean(truth / logging_truth - 1))
            for name in ESTIMATORS:
                cell = [r[candidate][reward][name] for r in runs]
                est = np.array([c["value"] for c in cell])
                relative = (est - truth) / truth
                stats = {
                    "coverage": float(np.mean([c["covered"] for c in cell])),
                    "lift_coverage": float(np.mean([c["lift_covered"] for c in cell])),
                    "lift_sign_detected": float(np.mean([c["lift_sign"] for c in cell])),
                    "relative_bias": float(relative.mean()),
                    "relative_bias_se": float(relative.std(ddof=1) / np.sqrt(len(relative))),
                    "relative_rmse": float(np.sqrt(np.mean(relative**2))),
                    "relative_half_width": float(np.mean(np.array([c["half_width"] for c in cell]) / truth)),
                }
                summary[f"{candidate}/{reward}/{name}"] = stats
                rows.append(
                    f"| {candidate} | {reward} | {name.upper()} | {stats['coverage']:.0%} | "
                    f"{stats['lift_coverage']:.0%} | {stats['lift_sign_detected']:.0%} | "
                    f"{stats['relative_bias']:+.2%} ± {stats['relative_bias_se']:.2%} | "
                    f"{stats['relative_rmse']:.2%} | {stats['relative_half_width']:.2%} |"
                )
        summary[f"{candidate}/mean_ess_share"] = float(
            np.mean([r[candidate]["ess"] / r[candidate]["rows"] for r in runs])
        )
        summary[f"{candidate}/degenerate_runs"] = int(sum(r[candidate]["degenerate"] for r in runs))
    return summary, rows


def reading(summary: dict) -> str:
    """A paragraph on the table: coverage ranges per candidate, with its ESS."""

    def span(candidate: str, key: str, rewards=REWARDS) -> str:
        values = [summary[f"{candidate}/{r}/{n}"][key] for r in rewards for n in ESTIMATORS]
        return f"{min(values):.0%} to {max(values):.0%}"

    return (
        f"Reading: for `attractive` (ESS {summary['attractive/mean_ess_share']:.0%} of the rows) the value intervals "
        f"hold the true value in {span('attractive', 'coverage')} of the seeds and the lift intervals the true lift "
        f"in {span('attractive', 'lift_coverage')}. `cheap` puts items where the Plackett-Luce logger rarely put "
        f"them (ESS {summary['cheap/mean_ess_share']:.0%}): its estimates rest on a few rows with large weights, "
        "are unbiased only on average over many logs (a typical log misses the rare heavy rows, so they are skewed "
        f"low) and its intervals cover less: {span('cheap', 'coverage', ('click',))} for clicks, "
        f"{span('cheap', 'coverage', ('purchase_value',))} for revenue. Off-policy intervals are as good as the "
        "logger's coverage of the candidate's rankings: read `ess` and `degenerate` with them."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--sessions", type=int, default=3000)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--slates", default="6,8,10", help="slate sizes, cycled over the seeds")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--output", default=None, help="markdown file for the table")
    args = parser.parse_args()
    slates = [int(s) for s in args.slates.split(",")]
    t0 = time.time()
    runs = [
        one_seed(seed, args.sessions, args.users, args.items, slates[seed % len(slates)], args.resamples)
        for seed in range(args.seeds)
    ]
    seconds = time.time() - t0
    summary, rows = summarise(runs)
    info = machine_info()
    lifts = ", ".join(
        f"{c}: {summary[f'{c}/click/true_relative_lift']:+.1%} clicks, "
        f"{summary[f'{c}/purchase_value/true_relative_lift']:+.1%} revenue"
        for c in CANDIDATES
    )
    ess = ", ".join(f"{c} {summary[f'{c}/mean_ess_share']:.1%}" for c in CANDIDATES)
    degenerate = ", ".join(f"{c} {summary[f'{c}/degenerate_runs']}" for c in CANDIDATES)
    text = "\n".join(
        [
            "# Offline A/B: coverage of the 95% intervals on the simulator",
            "",
            f"Command: `python benchmarks/off_policy_coverage.py --seeds {args.seeds} --sessions {args.sessions} "
            f"--users {args.users} --items {args.items} --slates {args.slates} --resamples {args.resamples}` "
            f"({seconds:.0f} s)",
            f"Machine: {info.get('cpu')} ({info.get('cores')} cores), flags: {', '.join(info.get('cpu_flags', []))}",
            f"Data: {args.seeds} seeds (0..{args.seeds - 1}), each {args.sessions} sessions, {args.users} users, "
            f"{args.items} items, slates of {args.slates} slots cycled over the seeds, logged by the simulator's "
            f"Plackett-Luce ranker (temperature {SimulatorConfig().logging_temperature:g}, position bias "
            f"{SimulatorConfig().position_bias:g}).",
            "",
            "Candidates: `attractive` ranks each session's logged items by log P(click | seen) + N(0, 0.5); `cheap` "
            "by -log price + N(0, 0.5). True values are the planted expectations for the logged sessions; their "
            f"mean true lift over the logging policy: {lifts}. DR's reward model: P(click | seen) and the purchase "
            "value of a click, each x lognormal noise (sigma 0.3), examination calibrated per position on the logs. "
            f"Mean effective sample size: {ess} of the rows; runs flagged degenerate: {degenerate} of {args.seeds}.",
            "",
            "| candidate | reward per session | estimator | 95% interval covers the true value | lift interval "
            "covers the true lift | lift interval excludes 0 with the true sign | mean relative bias ± SE | "
            "relative RMSE | mean relative half-width |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
            *rows,
            "",
            reading(summary),
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
