"""Markdown tables of a benchmark run (the JSON that `run.py` writes).

`summary_rows(report)` turns the JSON into the rows of the one summary table
(measure | tfrec | peer | ratio | target | met), every number measured in
the same run; `render_summary(report)` renders them with the machine line
(CPU model and vector flags, cores, TensorFlow, load average, GPU);
`render(report)` adds the detailed per-item tables below.

Usage: python benchmarks/report.py [benchmarks/results/latest.json] [--write]
(`--write`: also write the markdown next to the JSON, `latest.md`).
"""

from __future__ import annotations

import json
import os
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


# ---------------------------------------------------------------------------
# The summary table: one row per target, tfrec against the peer of the same run.

#: (query_tower workload, what it measures, target ratio to sentence-transformers), tfrec variant `dynamic`.
QUERY_TOWER_TARGETS = (
    ("queries_batch32", "Text tower, real short queries, batches of 32 (texts/s)", 1.5),
    ("queries_batch1", "Text tower, one query at a time (texts/s)", 2.0),
    ("titles_batch256", "Text tower, catalog titles, batches of 256 (texts/s)", 1.2),
)
QUERY_TOWER_VARIANT = "dynamic"
SERVING_OVERHEAD_MS = 1.0
BATCHING_RATIO, BATCHING_P99_MS = 3.0, 50.0
OUT_OF_CORE_RATIO, OUT_OF_CORE_RSS_MB = 0.9, 4096.0
RETRIEVE_P99_MS, RETRIEVE_AT_ITEMS = 50.0, 1_000_000


def _row(measure, tfrec=None, peer=None, ratio=None, target="-", met=None, note="", ratio_unit="x") -> dict:
    """One summary row; `met` is None where nothing was measured or there is no target."""
    return {
        "measure": measure,
        "tfrec": tfrec,
        "peer": peer,
        "ratio": ratio,
        "ratio_unit": ratio_unit,
        "target": target,
        "met": met,
        "note": note,
    }


def _reason(text, limit=200) -> str:
    """The line of an error output that says most: the last non-empty one (the exception)."""
    lines = [ln.strip() for ln in str(text or "").splitlines() if ln.strip()]
    return (lines[-1] if lines else "")[:limit]


def _item(report, name):
    """(the item's JSON, None) when it ran and succeeded, else (None, why not)."""
    item = (report.get("items") or {}).get(name)
    if item is None:
        return None, f"{name} not run in this report"
    status = item.get("status", "ok")
    if status == "ok":
        return item, None
    return None, f"{name} {status}: {_reason(item.get('skipped') or item.get('reason'))}"


def _ratio(recorded, num, den):
    """The ratio the script recorded, else num / den (None when either is missing or den is 0)."""
    if recorded is not None:
        return float(recorded)
    if num is None or not den:
        return None
    return float(num) / float(den)


def _query_tower_rows(report) -> list[dict]:
    item, why = _item(report, "query_tower")
    rows = []
    for workload, measure, target in QUERY_TOWER_TARGETS:
        target_text = f">= {target}x sentence-transformers"
        if why:
            rows.append(_row(measure, target=target_text, note=why))
            continue
        w = (item.get("workloads") or {}).get(workload)
        if w is None:
            quick = " (--quick measures queries_batch32 only)" if item.get("quick") else ""
            rows.append(_row(measure, target=target_text, note=f"workload {workload} not measured{quick}"))
            continue
        variants = w.get("variants") or {}
        mine, st = variants.get(QUERY_TOWER_VARIANT), variants.get("sentence_transformers")
        if mine is None:
            rows.append(_row(measure, target=target_text, note=f"variant {QUERY_TOWER_VARIANT} not measured"))
            continue
        if st is None:
            why_st = item.get("sentence_transformers_skipped") or "sentence-transformers not measured"
            rows.append(_row(measure, mine["texts_per_s"], target=target_text, note=why_st))
            continue
        recorded = mine.get("ratio_to_sentence_transformers")
        ratio = _ratio(recorded, mine["texts_per_s"], st["texts_per_s"])
        notes = [f"tfrec `{QUERY_TOWER_VARIANT}`, batch {w.get('batch_size')}, {w.get('texts')} texts"]
        if recorded is not None:
            notes.append("ratio: median of the per-repeat ratios")
        if mine.get("ratio_of_best_repeats") is not None:
            notes.append(f"best repeats {mine['ratio_of_best_repeats']:.2f}x")
        if mine.get("ratio_to_sentence_transformers_1thread") is not None:
            notes.append(f"vs sentence-transformers at 1 thread {mine['ratio_to_sentence_transformers_1thread']:.2f}x")
        one = variants.get(QUERY_TOWER_VARIANT + "_1thread")
        if one and one.get("ratio_to_sentence_transformers") is not None:
            notes.append(f"tfrec at 1 thread {one['ratio_to_sentence_transformers']:.2f}x")
        rows.append(
            _row(measure, mine["texts_per_s"], st["texts_per_s"], ratio, target_text, ratio >= target, "; ".join(notes))
        )
    return rows


def _serving_rows(report) -> list[dict]:
    item, why = _item(report, "serving")
    overhead_rows, batching_rows = [], []
    for sig in ("score", "retrieve"):
        over = f"Serving overhead, `{sig}`: served p50 at 1 client minus in-process p50 (ms)"
        batch = f"Server-side batching, `{sig}`: QPS at 16 clients vs 1 client"
        over_t, batch_t = f"<= {SERVING_OVERHEAD_MS:g} ms", f">= {BATCHING_RATIO:g}x, p99 < {BATCHING_P99_MS:g} ms"
        r = None if why else (item.get("signatures") or {}).get(sig)
        if r is None:
            note = why or f"signature {sig} not measured"
            overhead_rows.append(_row(over, target=over_t, note=note))
            batching_rows.append(_row(batch, target=batch_t, note=note))
            continue
        served, inproc = r["clients_1"]["p50_ms"], r["in_process_1"]["p50_ms"]
        overhead = float(r["overhead_p50_ms"]) if r.get("overhead_p50_ms") is not None else served - inproc
        note = f"served / in-process p50 {served / inproc:.2f}x" if inproc else ""
        floor = item.get("grpc_round_trip_without_model") or {}
        if floor.get("p50_ms") is not None:
            note += f"; a gRPC round trip without TensorFlow work: p50 {floor['p50_ms']:.2f} ms"
        overhead_rows.append(_row(over, served, inproc, overhead, over_t, overhead <= SERVING_OVERHEAD_MS, note, " ms"))
        c1, c16 = r["clients_1"], r["clients_16"]
        ratio = _ratio(None, c16["qps"], c1["qps"])
        met = None if ratio is None else bool(ratio >= BATCHING_RATIO and c16["p99_ms"] < BATCHING_P99_MS)
        note = f"p99 at 16 clients {c16['p99_ms']:.1f} ms, at 1 client {c1['p99_ms']:.1f} ms"
        batching_rows.append(_row(batch, c16["qps"], c1["qps"], ratio, batch_t, met, note))
    return overhead_rows + batching_rows


def _out_of_core_rows(report) -> list[dict]:
    item, why = _item(report, "out_of_core")
    speed = "Out-of-core training input: steps/s from the parquet files vs one cached in-memory batch"
    rss = "Out-of-core training: peak RSS of the whole run (MB)"
    speed_t, rss_t = f">= {OUT_OF_CORE_RATIO:g}x", f"< {OUT_OF_CORE_RSS_MB / 1024:g} GB"
    if why:
        return [_row(speed, target=speed_t, note=why), _row(rss, target=rss_t, note=why)]
    files, cached = item.get("steps_per_second_files"), item.get("steps_per_second_cached")
    ratio = _ratio(item.get("files_over_cached"), files, cached)
    data = item.get("data") or {}
    b = data.get("bytes")
    size = "" if not b else f", {b / 1e9:.2f} GB on disk" if b >= 1e9 else f", {b / 1e6:.0f} MB on disk"
    rows_used = item.get("rows_used", item.get("rows"))
    note = f"{rows_used:,} rows{size}, {item.get('steps')} steps, batch {item.get('batch_size')}"
    rows = [_row(speed, files, cached, ratio, speed_t, None if ratio is None else ratio >= OUT_OF_CORE_RATIO, note)]
    peaks = [item.get(k) for k in ("peak_rss_mb", "generate_peak_rss_mb", "stats_peak_rss_mb", "train_peak_rss_mb")]
    peaks = [float(p) for p in peaks if p is not None]
    peak = max(peaks) if peaks else None
    phases = ", ".join(
        f"{label} {item[k]:,.0f}"
        for label, k in (
            ("generate", "generate_peak_rss_mb"),
            ("statistics", "stats_peak_rss_mb"),
            ("train", "train_peak_rss_mb"),
        )
        if item.get(k) is not None
    )
    note = f"{note}; per phase (MB): {phases}" if phases else note
    rows.append(_row(rss, peak, target=rss_t, met=None if peak is None else peak < OUT_OF_CORE_RSS_MB, note=note))
    return rows


def _replica_rows(item, why, label, note_extra="") -> list[dict]:
    target = "> 1x (grows with replicas)"
    if why:
        return [_row(f"{label}: N vs 1 replicas (examples/s)", target=target, note=why)]
    results = item.get("results") or []
    if not results:
        return [_row(f"{label}: N vs 1 replicas (examples/s)", target=target, note="no results recorded")]
    base = results[0]
    if len(results) == 1:
        note = f"{base['replicas']} replica(s) only, on {base.get('device')}; {note_extra}".rstrip("; ")
        return [_row(f"{label}: {base['replicas']} replica(s) (examples/s)", base["examples_per_second"], note=note)]
    rows = []
    for r in results[1:]:
        ratio = _ratio(None, r["examples_per_second"], base["examples_per_second"])
        ideal = r["replicas"] / base["replicas"]
        note = (
            f"{r.get('device')}; global batch {r.get('global_batch')} vs {base.get('global_batch')}; "
            f"scaling efficiency {ratio / ideal:.0%}"
        )
        if note_extra:
            note += f"; {note_extra}"
        rows.append(
            _row(
                f"{label}: {r['replicas']} vs {base['replicas']} replicas (examples/s)",
                r["examples_per_second"],
                base["examples_per_second"],
                ratio,
                target,
                ratio > 1.0,
                note,
            )
        )
    return rows


def _training_rows(report) -> list[dict]:
    item, why = _item(report, "training")
    extra = ""
    if not why and all(str(r.get("device", "")).startswith("CPU") for r in item.get("results") or []):
        extra = "on a CPU the replicas are logical devices sharing the same cores"
    return _replica_rows(item, why, "Training, quickstart config", extra)


def _gpu_rows(report) -> list[dict]:
    label = "GPU training, multi-GPU config, bf16 + XLA"
    gpu = report.get("gpu")
    if gpu is None:
        return [_row(f"{label}: 1 vs N replicas", note="GPU: not checked in this run (--only, or --gpu never)")]
    if not gpu.get("present") and "gpu_training" not in (report.get("items") or {}):
        return [_row(f"{label}: 1 vs N replicas", note="GPU: none present")]
    item, why = _item(report, "gpu_training")
    extra = f"GPUs: {gpu.get('count', 0)}" + (" (forced with --gpu always)" if gpu.get("forced") else "")
    if not why and len(item.get("results") or []) == 1:
        extra += "; 1 vs N replicas needs 2 or more GPUs"
    return _replica_rows(item, why, label, extra)


def _retrieve_rows(report) -> list[dict]:
    item, why = _item(report, "retrieve_scaling")
    brute_m = "Retrieve, brute force, the largest catalog: p99 (ms)"
    part_m = "Retrieve, partitioned index vs brute force, the largest catalog: p50 (ms)"
    target = f"< {RETRIEVE_P99_MS:g} ms at {RETRIEVE_AT_ITEMS:,} items"
    if why:
        return [_row(brute_m, target=target, note=why), _row(part_m, note=why)]
    good = [r for r in item.get("rows") or [] if "error" not in r and r.get("clustered", True)]
    rows = []
    for dim in sorted({r["dim"] for r in good}):
        at = [r for r in good if r["dim"] == dim]
        n = max(r["items"] for r in at)
        brute = next((r for r in at if r["items"] == n and r["index"]["kind"] == "brute_force"), None)
        part = next((r for r in at if r["items"] == n and r["index"]["kind"] == "partitioned"), None)
        where = f"{n:,} items, d={dim}"
        if brute is not None:
            met = brute["p99_ms"] < RETRIEVE_P99_MS if n >= RETRIEVE_AT_ITEMS else None
            note = "" if met is not None else f"the target is for {RETRIEVE_AT_ITEMS:,} items"
            rows.append(
                _row(f"Retrieve, brute force, {where}: p99 (ms)", brute["p99_ms"], target=target, met=met, note=note)
            )
        if brute is not None and part is not None and part.get("probes"):
            probes = part["probes"]
            recalled = [p for p in probes if p["recall_at_10"] >= 0.95]
            p = min(recalled, key=lambda p: p["p50_ms"]) if recalled else max(probes, key=lambda p: p["recall_at_10"])
            note = f"probe {p['probe']} ({p['scanned_fraction']:.1%} scanned), recall@10 {p['recall_at_10']:.3f}"
            ratio = _ratio(None, brute["p50_ms"], p["p50_ms"])
            measure = f"Retrieve, partitioned index vs brute force, {where}: p50 (ms)"
            rows.append(_row(measure, p["p50_ms"], brute["p50_ms"], ratio, note=note + "; ratio: the speed-up"))
    return rows or [_row(brute_m, target=target, note="retrieve_scaling recorded no rows")]


def _export_rows(report) -> list[dict]:
    item, why = _item(report, "export")
    measure = "Export: cold load of the SavedModel in a fresh process (s)"
    if why:
        return [_row(measure, note=why)]
    note = f"{item.get('model')}, {item['size_mb']:.1f} MB, exported in {item['export_s']:.1f} s"
    if item.get("cold_load_and_first_calls_s_median") is not None:
        note += f"; load + first calls {item['cold_load_and_first_calls_s_median']:.2f} s"
    return [_row(measure, item.get("cold_load_s_median"), note=note)]


def summary_rows(report) -> list[dict]:
    """The rows of the summary table: one per target, each from this report alone.

    Each row: `measure`, `tfrec` (tfrec's number), `peer` (the peer's number
    measured in the same run, or None), `ratio` (tfrec / peer, or the
    script's paired ratio; for the serving overhead a difference in ms, see
    `ratio_unit`), `target`, `met` (True, False, or None where nothing was
    measured or there is no target) and `note` (what was measured, or why
    it was not: an item that was not run, was skipped or failed says so).
    """
    return (
        _query_tower_rows(report)
        + _serving_rows(report)
        + _out_of_core_rows(report)
        + _training_rows(report)
        + _gpu_rows(report)
        + _retrieve_rows(report)
        + _export_rows(report)
    )


def _num(x) -> str:
    if x is None:
        return "-"
    x = float(x)
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _ratio_cell(row) -> str:
    if row["ratio"] is None:
        return "-"
    if row["ratio_unit"] == "x":
        return f"{row['ratio']:.2f}x"
    return f"{row['ratio']:+.2f}{row['ratio_unit']}"


def render_rows(rows) -> list[str]:
    lines = [
        "| measure | tfrec | peer (same run) | ratio | target | met | note |",
        "| --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for r in rows:
        met = {True: "yes", False: "no", None: "-"}[r["met"]]
        lines.append(
            f"| {_cell(r['measure'])} | {_num(r['tfrec'])} | {_num(r['peer'])} | {_ratio_cell(r)} | "
            f"{_cell(r['target'])} | {met} | {_cell(r['note'])} |"
        )
    return lines


def summary_machine_line(report) -> str:
    """CPU model, the vector flags present and absent, cores, TensorFlow, load average, GPU."""
    m = report.get("machine") or {}
    checked = m.get("cpu_flags_checked")
    if checked is None:  # a report written before `cpu_flags_checked`
        flags = set(m.get("cpu_flags") or [])
        checked = {
            f: any(x.startswith("amx") for x in flags) if f == "amx" else f in flags
            for f in ("avx2", "avx512f", "avx512_bf16", "amx")
        }
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in checked.items())
    model = m.get("cpu", "unknown CPU")
    if m.get("lscpu_model") and m["lscpu_model"] != model:
        model += f" (lscpu: {m['lscpu_model']})"
    load_start = (m.get("load_average_at_start") or ["-"])[0]
    load_end = (report.get("load_average_at_end") or ["-"])[0]
    gpu = report.get("gpu")
    if gpu is None:
        gpu_text = "not checked"
    elif gpu.get("present"):
        names = gpu.get("tensorflow_gpus") or gpu.get("nvidia_smi") or []
        gpu_text = f"{gpu.get('count', len(names))} ({', '.join(names)})"
    else:
        gpu_text = "none present"
    return (
        f"Machine: {model}; flags: {flags}; {m.get('cores')} cores; {m.get('memory_gb')} GB; "
        f"TensorFlow {(m.get('versions') or {}).get('tensorflow')}; load average {load_start} at start, "
        f"{load_end} at end; GPU: {gpu_text}; {m.get('time_utc', '')}"
    )


def render_summary(report) -> str:
    """The summary table and the machine line, as markdown."""
    size = report.get("size") or ("quick" if report.get("quick") else "default")
    items = report.get("items") or {}
    timing = ", ".join(f"{k} {v.get('seconds', 0):g} s" for k, v in items.items() if "seconds" in v)
    lines = render_rows(summary_rows(report)) + [
        "",
        summary_machine_line(report),
        "",
        f"Sizes: `{size}`; {report.get('seconds', '-')} s in all ({timing}).",
    ]
    return "\n".join(lines)


def render_markdown(report) -> str:
    """The summary, then the detailed tables of each item: what `run.py` writes next to its JSON."""
    return "\n".join(["# tfrec benchmarks", "", render_summary(report), "", "## Details", "", render(report)])


# ---------------------------------------------------------------------------
# Detailed tables of each item.


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
    base = item["results"][0]
    for r in item["results"]:
        speedup = r.get("speedup", r["examples_per_second"] / base["examples_per_second"])
        efficiency = r.get("scaling_efficiency", speedup / (r["replicas"] / base["replicas"]))
        lines.append(
            f"| {r['replicas']} | {r['global_batch']} | {_fmt(float(r['examples_per_second']), 0)} | "
            f"{speedup:.2f} | {efficiency:.2f} |"
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


def out_of_core(item) -> list[str]:
    if item.get("status") != "ok":
        return [f"out of core: {item.get('status')}: {_reason(item.get('reason'), 300)}"]
    keys = (
        "rows_used",
        "steps",
        "batch_size",
        "generate_seconds",
        "stats_seconds",
        "stats_rows_per_second",
        "build_seconds",
        "train_files_seconds",
        "train_cached_seconds",
        "steps_per_second_files",
        "steps_per_second_cached",
        "files_over_cached",
        "generate_peak_rss_mb",
        "stats_peak_rss_mb",
        "train_peak_rss_mb",
        "peak_rss_mb",
    )
    lines = ["| measure | value |", "| --- | ---: |"]
    lines += [
        f"| {k} | {_fmt(item[k], 3) if isinstance(item[k], float) else _fmt(item[k])} |" for k in keys if k in item
    ]
    return lines


SECTIONS = {
    "query_tower": ("Query tower (MiniLM, sequence length 32)", query_tower),
    "training": ("Training throughput", training),
    "serving": ("Served vs in-process (one row per request)", serving),
    "retrieve_scaling": ("Retrieve latency and memory vs catalog size (k=10, one query per call)", retrieve_scaling),
    "export": ("Export", export),
    "out_of_core": ("Out-of-core training input (sharded parquet, streamed)", out_of_core),
    "gpu_training": ("GPU training (multi-GPU config, bf16 + XLA)", training),
}


def render(report) -> str:
    out = [f"Machine: {machine_line(report)}", ""]
    for name, item in report["items"].items():
        title, fn = SECTIONS.get(name, (name, None))
        if fn is None or item.get("status") in ("missing", "skipped"):
            reason = item.get("skipped") or item.get("reason", "")
            out += [f"**{title}**", "", f"{item.get('status')}: {_reason(reason, 300)}", ""]
            continue
        out += [f"**{title}**", ""] + fn(item) + [""]
    return "\n".join(out)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    write = "--write" in argv
    paths = [a for a in argv if a != "--write"]
    path = paths[0] if paths else "benchmarks/results/latest.json"
    with open(path) as f:
        text = render_markdown(json.load(f))
    print(text)
    if write:
        md = os.path.splitext(path)[0] + ".md"
        with open(md, "w") as f:
            f.write(text + "\n")
        print(f"wrote {md}", file=sys.stderr)


if __name__ == "__main__":
    main()
