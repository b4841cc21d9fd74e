"""The daily retraining loop on drifting simulated logs: frozen vs warm start vs cold retrain.

`tfrec.data.daily_logs.simulate_days` draws N days of logs (new items and
users arrive, interests and prices drift). Three ways to keep a model:

* `frozen`: trained once on day 1 (the full schedule), never retrained;
* `warm`: day 1's model, then each day warm-started from the day before
  (`training.init_from`) and trained on that day's log only, for a short
  schedule (`--warm-epochs`, default 1);
* `cold`: each day trained from scratch on every day so far (`--window`
  days at most), for the full schedule (`--epochs`).

Each day's model is scored on the next day's log against that day's planted
truth (the oracle knows the next day's preferences and prices): CTR AUC
beside the oracle's, Recall@50 over the whole catalog, the user value Gini,
and the training seconds of that day. The script prints a table, writes it
as markdown and JSON, and plots the metrics per day.

Usage:
    python benchmarks/daily_loop.py [--days 5] [--epochs 3] [--warm-epochs 1] [--quick]
        [--out benchmarks/results/daily_loop.json]

The markdown table and PNG go next to `--out` (`daily_loop.md`, `daily_loop.png`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench_common import machine_info  # noqa: E402

WAYS = ("frozen", "warm", "cold")


def job_config(args, run_dir, epochs, init_from=None):
    from tfrec.jobs.config import JobConfig

    training = {"epochs": epochs, "batch_size": 256, "verbose": 0, "tensorboard": False, "seed": 0}
    if init_from is not None:
        training["init_from"] = init_from
    return JobConfig.from_dict(
        {
            "output_dir": run_dir,
            "model": {
                "embedding_dim": 32,
                "id_embedding_dim": 16,
                "tower_units": [64],
                "expert_units": [32],
                "text": {
                    "vocabulary_size": 600,
                    "hidden_dim": 32,
                    "num_layers": 1,
                    "num_heads": 2,
                    "query_sequence_length": 8,
                    "item_sequence_length": 12,
                },
            },
            "training": training,
        }
    )


def evaluate_next_day(model, train_df, next_day, fraction):
    """CTR AUC (model, oracle), Recall@50 and value Gini of `model` on the next day's log."""
    from tfrec.data.split import holdout_mask
    from tfrec.evaluation.simulated import evaluate_simulated

    split = argparse.Namespace(train=train_df, test=next_day.impressions)
    held = holdout_mask(next_day.users.user_id, fraction) if fraction > 0 else None
    metrics = evaluate_simulated(model, next_day, split, ks=[10, 50], max_queries=2000, value_holdout=held).metrics
    return {
        "ctr_auc": metrics["ctr"]["model"]["auc"],
        "oracle_ctr_auc": metrics["ctr"]["oracle"]["auc"],
        "recall@50": metrics["retrieval"]["model"]["recall@50"],
        "oracle_recall@50": metrics["retrieval"]["oracle"]["recall@50"],
        "value_gini": metrics["value"]["model"]["normalized_gini"],
        "oracle_value_gini": metrics["value"]["oracle"]["normalized_gini"],
    }


def run(args) -> dict:
    import pandas as pd

    from tfrec.data.daily_logs import DriftConfig, simulate_days
    from tfrec.data.simulator import SimulatorConfig
    from tfrec.data.validation import validate
    from tfrec.training import train_model

    sim_config = SimulatorConfig(
        num_users=args.users, num_items=args.items, num_sessions=args.sessions_per_day, seed=args.seed
    )
    days = simulate_days(sim_config, DriftConfig(days=args.days))
    schema = days[0].schema()
    logs = [validate(d.impressions, schema).valid for d in days]
    root = tempfile.mkdtemp(prefix="tfrec-daily-")
    rows = []
    models = {}
    previous = {}
    for day in range(args.days - 1):  # the last day is only scored
        for way in WAYS:
            run_dir = os.path.join(root, f"{way}-day{day + 1}")
            if day == 0 and way != "frozen":  # day 1 is the same run for every way: trained once
                model, train_df = models["frozen"], models["frozen_train"]
                seconds, cpu_seconds = models["day1_seconds"]
                config = job_config(args, run_dir, args.epochs)
            elif way == "frozen" and day > 0:
                model, seconds, cpu_seconds, train_df = models["frozen"], 0.0, 0.0, models["frozen_train"]
            else:
                if way == "cold" or day == 0:
                    train_df = pd.concat(logs[max(0, day + 1 - args.window) : day + 1], ignore_index=True)
                    config = job_config(args, run_dir, args.epochs)
                else:
                    train_df = logs[day]
                    config = job_config(args, run_dir, args.warm_epochs, init_from=previous[way])
                start, cpu_start = time.perf_counter(), time.process_time()
                model, _ = train_model(config, schema, train_df, None, run_dir=run_dir)
                seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
                previous[way] = run_dir
                if way == "frozen":
                    models["frozen"], models["frozen_train"] = model, train_df
                    models["day1_seconds"] = (seconds, cpu_seconds)
                    previous["warm"] = previous["cold"] = run_dir
            row = {
                "day": day + 1,
                "way": way,
                "train_rows": len(train_df),
                "train_seconds": round(seconds, 1),
                "train_cpu_seconds": round(cpu_seconds, 1),
            }
            row.update(evaluate_next_day(model, train_df, days[day + 1], config.training.value_holdout_fraction))
            rows.append(row)
            print(
                f"day {day + 1} {way:>6}: {row['train_rows']:>7} rows {row['train_seconds']:>6.1f}s "
                f"({row['train_cpu_seconds']:.0f} CPU s)  "
                f"CTR AUC {row['ctr_auc']:.4f} (oracle {row['oracle_ctr_auc']:.4f})  "
                f"R@50 {row['recall@50']:.4f}  Gini {row['value_gini']:.4f}",
                flush=True,
            )
    return {"machine": machine_info(), "args": vars(args), "rows": rows, "summary": summarise(rows)}


def summarise(rows) -> dict:
    """Mean over days after the first of each way, and the warm-vs-cold targets."""
    import numpy as np

    later = [r for r in rows if r["day"] > 1]
    out = {}
    for way in WAYS:
        mine = [r for r in later if r["way"] == way]
        if not mine:
            continue
        out[way] = {
            key: float(np.mean([r[key] for r in mine]))
            for key in ("ctr_auc", "recall@50", "value_gini", "train_seconds", "train_cpu_seconds")
        }
    if "warm" in out and "cold" in out:
        out["warm_minus_cold_ctr_auc"] = out["warm"]["ctr_auc"] - out["cold"]["ctr_auc"]
        # CPU seconds of the training process: unlike wall time, not inflated by other jobs on the machine.
        out["warm_time_share_of_cold"] = out["warm"]["train_cpu_seconds"] / max(out["cold"]["train_cpu_seconds"], 1e-9)
        out["warm_wall_time_share_of_cold"] = out["warm"]["train_seconds"] / max(out["cold"]["train_seconds"], 1e-9)
        out["target_auc_within_0.01_of_cold"] = out["warm_minus_cold_ctr_auc"] >= -0.01
        out["target_time_at_most_one_third"] = out["warm_time_share_of_cold"] <= 1 / 3
        out["warm_minus_frozen_ctr_auc"] = out["warm"]["ctr_auc"] - out["frozen"]["ctr_auc"]
    return out


def write_outputs(result, out):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f, indent=2)
    stem = os.path.splitext(out)[0]
    rows, machine, args = result["rows"], result["machine"], result["args"]
    lines = [
        "# Daily retraining loop: frozen vs warm start vs cold retrain",
        "",
        f"Command: `python benchmarks/daily_loop.py --days {args['days']} --epochs {args['epochs']} "
        f"--warm-epochs {args['warm_epochs']}{' --quick' if args['quick'] else ''}`",
        f"Machine: {machine.get('cpu')} ({machine.get('cores')} cores), "
        f"flags: {', '.join(machine.get('cpu_flags', []))}",
        f"Data: {args['users']} users, {args['items']} items, {args['sessions_per_day']} sessions/day "
        f"(x10 impressions), seed {args['seed']}; each day's model scored on the next day.",
        "",
        "| day | way | train rows | train s | train CPU s | CTR AUC | oracle | Recall@50 | oracle | value Gini "
        "| oracle |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(
            f"| {r['day']} | {r['way']} | {r['train_rows']} | {r['train_seconds']:.1f} | "
            f"{r['train_cpu_seconds']:.0f} | {r['ctr_auc']:.4f} | "
            f"{r['oracle_ctr_auc']:.4f} | {r['recall@50']:.4f} | {r['oracle_recall@50']:.4f} | "
            f"{r['value_gini']:.4f} | {r['oracle_value_gini']:.4f} |"
        )
    s = result["summary"]
    lines += ["", "Means over days 2 and later:", ""]
    for way in WAYS:
        if way in s:
            m = s[way]
            lines.append(
                f"- {way}: CTR AUC {m['ctr_auc']:.4f}, Recall@50 {m['recall@50']:.4f}, "
                f"value Gini {m['value_gini']:.4f}, {m['train_seconds']:.1f} s ({m['train_cpu_seconds']:.0f} CPU s) "
                "training per day"
            )
    if "warm_minus_cold_ctr_auc" in s:
        lines += [
            "",
            f"Warm minus cold CTR AUC: {s['warm_minus_cold_ctr_auc']:+.4f} (target >= -0.01: "
            f"{'met' if s['target_auc_within_0.01_of_cold'] else 'NOT met'}); warm training CPU time "
            f"{s['warm_time_share_of_cold']:.2f} of cold's (wall time {s['warm_wall_time_share_of_cold']:.2f}; "
            "target <= 0.33: "
            f"{'met' if s['target_time_at_most_one_third'] else 'NOT met'}); warm minus frozen CTR AUC "
            f"{s['warm_minus_frozen_ctr_auc']:+.4f}.",
        ]
    with open(stem + ".md", "w") as f:
        f.write("\n".join(lines) + "\n")
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
    for ax, key, title in zip(
        axes,
        ("ctr_auc", "recall@50", "value_gini", "train_cpu_seconds"),
        ("CTR AUC (next day)", "Recall@50 (next day)", "value Gini (next day)", "training CPU seconds"),
    ):
        for way in WAYS:
            mine = [r for r in rows if r["way"] == way]
            ax.plot([r["day"] for r in mine], [r[key] for r in mine], marker="o", label=way)
        if key != "train_cpu_seconds":
            oracle = [r for r in rows if r["way"] == "cold"]
            ax.plot([r["day"] for r in oracle], [r["oracle_" + key] for r in oracle], "k--", label="oracle")
        ax.set_title(title)
        ax.set_xlabel("day trained")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(stem + ".png", dpi=90)
    print(f"wrote {out}, {stem}.md and {stem}.png")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--days", type=int, default=5)
    p.add_argument("--epochs", type=int, default=3, help="full schedule (day 1 and cold retrains)")
    p.add_argument("--warm-epochs", type=int, default=1, help="short schedule of warm starts")
    p.add_argument("--window", type=int, default=7, help="most days a cold retrain reads")
    p.add_argument("--users", type=int, default=3000)
    p.add_argument("--items", type=int, default=800)
    p.add_argument("--sessions-per-day", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smoke-test size (seconds)")
    p.add_argument("--out", default=os.path.join(HERE, "results", "daily_loop.json"))
    args = p.parse_args(argv)
    if args.quick:
        args.days, args.epochs, args.users, args.items, args.sessions_per_day = 3, 1, 300, 100, 300
    write_outputs(run(args), args.out)


if __name__ == "__main__":
    main()
