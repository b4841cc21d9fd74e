"""Markdown tables of a benchmark run (the JSON that `run.py` writes).

Usage: python benchmarks/report.py [benchmarks/results/latest.json]
"""

from __future__ import annotations

import json
import sys


def _fmt(x, nd=1):
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def machine_line(report) -> str:
    m = report["machine"]
    v = m["versions"]
    return (
        f"{m['cpu']}, {m['cores']} cores ({', '.join(m.get('cpu_flags', []))}), {m['memory_gb']} GB; "
        f"TensorFlow {v.get('tensorflow')}, keras-hub {v.get('keras-hub')}, torch {v.get('torch')}, "
        f"sentence-transformers {v.get('sentence-transformers')}; {m['time_utc']}; load average at start "
        f"{m['load_average_at_start'][0]}, at end {report.get('load_average_at_end', ['-'])[0]}"
    )


def query_tower(item) -> list[str]:
    if item.get("status") != "ok":
        return [f"query tower: {item.get('status')}: {item.get('skipped') or item.get('reason', '')[:200]}"]
    lines = [
        "| workload | variant | texts/s median (best) | x sentence-transformers: median (best repeats) | "
        "x sentence-transformers 1 thread | min cosine to float32 |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, w in item["workloads"].items():
        for variant, e in w["variants"].items():
            ratio = e.get("ratio_to_sentence_transformers")
            ratio = f"{ratio:.2f} ({e['ratio_of_best_repeats']:.2f})" if ratio is not None else "-"
            lines.append(
                f"| {name} | {variant} | {_fmt(e['texts_per_s'], 0)} ({_fmt(e.get('texts_per_s_best'), 0)}) | "
                f"{ratio} | {_fmt(e.get('ratio_to_sentence_transformers_1thread'), 2)} | "
                f"{e['cosine_to_float32_min']:.4f} |"
            )
    return lines


def training(item) -> list[str]:
    if item.get("status") != "ok":
        return [f"training: {item.get('status')}: {item.get('reason', '')[:300]}"]
    lines = [
        "| replicas | global batch | examples/s | speed-up | scaling efficiency |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in item["results"]:
        lines.append(
            f"| {r['replicas']} | {r['global_batch']} | {_fmt(float(r['examples_per_second']), 0)} | "
            f"{r['speedup']:.2f} | {r['scaling_efficiency']:.2f} |"
        )
    return lines


def serving(item) -> list[str]:
    if item.get("status") != "ok":
        return [f"serving: {item.get('status')}: {item.get('reason', '')[:300]}"]
    lines = [
        "| signature | in-process p50 / p99 ms | served 1 client p50 / p99 ms | served / in-process p50 | "
        "1 client QPS | 16 clients QPS (p50 / p99 ms) | in-process 16 threads QPS |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for sig, r in item["signatures"].items():
        i1, c1, c16, i16 = r["in_process_1"], r["clients_1"], r["clients_16"], r["in_process_16"]
        lines.append(
            f"| {sig} | {i1['p50_ms']:.2f} / {i1['p99_ms']:.2f} | {c1['p50_ms']:.2f} / {c1['p99_ms']:.2f} | "
            f"{r['served_to_in_process_p50']:.2f} | {c1['qps']:.0f} | {c16['qps']:.0f} "
            f"({c16['p50_ms']:.1f} / {c16['p99_ms']:.1f}) | {i16['qps']:.0f} |"
        )
    floor = item.get("grpc_round_trip_without_model")
    if floor:
        lines.append("")
        lines.append(f"A GetModelStatus round trip (no TensorFlow work): p50 {floor['p50_ms']:.2f} ms.")
    return lines


def retrieve_scaling(item) -> list[str]:
    if item.get("status") != "ok":
        return [f"retrieve scaling: {item.get('status')}: {item.get('reason', '')[:300]}"]
    lines = [
        "| items | d | index | probe (scanned) | recall@10 | p50 ms | p99 ms | index MB | peak RSS MB |",
        "| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in item["rows"]:
        kind = r["index"]["kind"] + ("" if r.get("clustered", True) else " (uniform data)")
        if "error" in r:
            lines.append(f"| {r['items']:,} | {r['dim']} | {kind} | failed | | | | | |")
            continue
        if r["index"]["kind"] == "brute_force":
            lines.append(
                f"| {r['items']:,} | {r['dim']} | {kind} | all | 1.000 | {r['p50_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {r['index_mb']:.0f} | {r['peak_rss_mb']:.0f} |"
            )
            continue
        for p in r["probes"]:
            lines.append(
                f"| {r['items']:,} | {r['dim']} | {kind}, {r['index']['clusters']} clusters | "
                f"{p['probe']} ({p['scanned_fraction']:.1%}) | {p['recall_at_10']:.3f} | {p['p50_ms']:.2f} | "
                f"{p['p99_ms']:.2f} | {r['index_mb']:.0f} | {r['peak_rss_mb']:.0f} |"
            )
    return lines


def export(item) -> list[str]:
    if item.get("status") != "ok":
        return [f"export: {item.get('status')}: {item.get('reason', '')[:300]}"]
    return [
        "| model | size MB | export s | cold load s (fresh process) | load + first calls s |",
        "| --- | ---: | ---: | ---: | ---: |",
        f"| {item['model']} | {item['size_mb']:.1f} | {item['export_s']:.1f} | "
        f"{_fmt(item.get('cold_load_s_median'), 2)} | {_fmt(item.get('cold_load_and_first_calls_s_median'), 2)} |",
    ]


SECTIONS = {
    "query_tower": ("Query tower (MiniLM, sequence length 32)", query_tower),
    "training": ("Training throughput", training),
    "serving": ("Served vs in-process (one row per request)", serving),
    "retrieve_scaling": ("Retrieve latency and memory vs catalog size (k=10, one query per call)", retrieve_scaling),
    "export": ("Export", export),
}


def render(report) -> str:
    out = [f"Machine: {machine_line(report)}", ""]
    for name, item in report["items"].items():
        title, fn = SECTIONS[name]
        out += [f"**{title}**", ""] + fn(item) + [""]
    return "\n".join(out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else "benchmarks/results/latest.json"
    with open(path) as f:
        print(render(json.load(f)))


if __name__ == "__main__":
    main()
