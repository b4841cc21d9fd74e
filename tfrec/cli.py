"""The `tfrec` command line.

```
tfrec quickstart [--config training/configs/quickstart.yaml] [--output-dir DIR]
tfrec train --config training/configs/<name>.yaml [--output-dir DIR] [--data FILES --schema S.yaml --shape S]
            [--init-from PREVIOUS_RUN]
tfrec evaluate --run-dir runs/quickstart [--output DIR]
tfrec cold-start [--config ...] [--held-out 0.15]
tfrec export runs/quickstart [--base-dir DIR] [--name NAME]      # or --model M.keras --catalog C.parquet --base-dir DIR
tfrec serve --port=8500 --rest_api_port=8501 --model_name=tfrec --model_base_path=$PWD/runs/quickstart/models/tfrec
tfrec ab --logs logs.parquet --candidate runs/new [--baseline runs/live] [--output ab/]
tfrec predict runs/search --data new_rows.csv --output scored.parquet [--signature score] [--chunk-rows N]
tfrec loadtest --target 127.0.0.1:8500 --examples runs/quickstart/examples.parquet --clients 16 --seconds 10
tfrec simulate --out impressions.parquet [--sessions N] [--seed S] [--days N]
tfrec validate --data FILES --schema schema.yaml [--rejected rejected.parquet] [--encoding E] [--delimiter D]
tfrec online-retail [--path online_retail.parquet] [--cutoff 2011-08-31]
tfrec simulate-search --output data/realistic_search.parquet [--catalog online_retail.parquet] [--num-queries N]
tfrec tune --config job.yaml --space space.yaml [--trials N] [--algorithm bayesian|hyperband|random] [--output-dir DIR]
```
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def _quiet_tensorflow():
    # Hide TensorFlow's C++ start-up chatter (CUDA probing on CPU machines,
    # oneDNN notices); Python errors still surface.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import warnings

    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")


def _default_config() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in (
        os.path.join("training", "configs", "quickstart.yaml"),
        os.path.join(here, os.pardir, "training", "configs", "quickstart.yaml"),
    ):
        if os.path.exists(candidate):
            return candidate
    return ""


def cmd_quickstart(args) -> int:
    _quiet_tensorflow()
    from tfrec.jobs.config import JobConfig
    from tfrec.jobs.simulated import run

    config = JobConfig.from_yaml(args.config) if args.config else JobConfig()
    if args.output_dir:
        config.output_dir = args.output_dir
    if args.epochs:
        config.training.epochs = args.epochs
    run(config)
    return 0


def cmd_train(args) -> int:
    _quiet_tensorflow()
    import shutil

    from tfrec.jobs.config import JobConfig

    config_path = args.config
    if config_path is None and not args.data:
        config_path = _default_config()  # the quickstart job
    config = JobConfig.from_yaml(config_path) if config_path else JobConfig()
    if args.output_dir:
        config.output_dir = args.output_dir
    elif args.data and args.config is None:
        # Your own files with the default settings: not the quickstart's run directory.
        config.output_dir = os.path.join("runs", args.shape or "tables")
    if args.epochs:
        config.training.epochs = args.epochs
    if args.strategy:
        config.training.strategy = args.strategy
        config.training.__post_init__()
    if args.init_from:
        config.training.init_from = args.init_from
        config.training.__post_init__()
    if args.data or args.schema or args.shape:
        data = config.data
        if args.data:
            data.paths = list(args.data)
            data.source = "files"
        if args.schema:
            data.schema = args.schema
        if args.shape:
            data.shape = args.shape
        if args.encoding:
            data.csv_encoding = args.encoding
        data.__post_init__()
    if args.no_resume:
        shutil.rmtree(config.training.backup_dir or os.path.join(config.output_dir, "backup"), ignore_errors=True)
    from tfrec.jobs import run_job

    run_job(config)
    return 0


def cmd_evaluate(args) -> int:
    _quiet_tensorflow()
    from tfrec.jobs.evaluate import evaluate_run

    evaluate_run(args.run_dir, output_dir=args.output)
    return 0


def cmd_cold_start(args) -> int:
    _quiet_tensorflow()
    from tfrec.jobs.cold_start import run
    from tfrec.jobs.config import JobConfig

    config = JobConfig.from_yaml(args.config) if args.config else JobConfig()
    if args.epochs:
        config.training.epochs = args.epochs
    result = run(config, held_out_fraction=args.held_out, k=args.k)
    print(json.dumps(result, indent=2, default=float))
    return 0


def cmd_export(args) -> int:
    _quiet_tensorflow()
    import keras
    import pandas as pd

    import tfrec.models  # noqa: F401  (registers the layers for loading)
    from tfrec.export import export_model

    run_dir = args.run_dir
    if run_dir is None and args.model is None:
        print("tfrec export: give a run directory (tfrec export RUN_DIR) or --model", file=sys.stderr)
        return 2
    if run_dir is not None and not os.path.isdir(run_dir):
        print(f"tfrec export: run directory not found: {run_dir!r}", file=sys.stderr)
        return 2

    def from_run(value, name):
        """An explicit flag, else the run directory's file `name` where it exists."""
        if value is not None or run_dir is None:
            return value
        path = os.path.join(run_dir, name)
        return path if os.path.exists(path) else None

    model_path = from_run(args.model, "model.keras")
    if model_path is None:
        print(f"tfrec export: {run_dir!r} has no model.keras (did training finish?)", file=sys.stderr)
        return 2
    base_dir = args.base_dir or (os.path.join(run_dir, "models") if run_dir else None)
    if base_dir is None:
        print("tfrec export: --base-dir is required without a run directory", file=sys.stderr)
        return 2
    model = keras.models.load_model(model_path)
    catalog_path, examples_path = from_run(args.catalog, "catalog.parquet"), from_run(args.examples, "examples.parquet")
    catalog = pd.read_parquet(catalog_path) if catalog_path else None
    examples = pd.read_parquet(examples_path) if examples_path else None
    training_config = None
    if run_dir is not None and os.path.exists(os.path.join(run_dir, "config.yaml")):
        from tfrec.jobs.evaluate import read_run_config

        training_config = read_run_config(run_dir)  # the manifest names the run's data, schema and cutoff
    metrics_path = from_run(None, "metrics.json")
    metrics = None
    if metrics_path:
        with open(metrics_path, encoding="utf-8") as f:
            metrics = json.load(f)
    options = {k: v for k, v in (("clusters", args.clusters), ("probe", args.probe)) if v is not None}
    try:
        result = export_model(
            model,
            base_dir,
            catalog=catalog,
            metrics=metrics,
            training_config=training_config,
            model_name=args.name,
            version=args.version,
            max_k=args.max_k,
            keep_versions=args.keep,
            examples=examples,
            verbose=False,
            retrieval_index=args.retrieval_index,
            index_options=options,
        )
    except ValueError as e:
        print(f"tfrec export: {e}", file=sys.stderr)
        return 2
    print(f"exported {result.path}")
    print(
        f"  size {result.size_bytes / 1e6:.1f} MB, export {result.export_seconds:.1f}s, "
        f"cold load {result.load_seconds:.1f}s"
    )
    print(f"  signatures: {', '.join(result.signatures)}")
    return 0


def cmd_serve(args) -> int:
    _quiet_tensorflow()
    import logging

    from tfrec.serving.config import ServingConfigError
    from tfrec.serving.flags import ignored_flags, server_from_args

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        server = server_from_args(args)
    except ServingConfigError as e:
        print(f"tfrec serve: {e}", file=sys.stderr)
        return 2
    for name in ignored_flags(args):
        print(f"tfrec serve: --{name} is a TF Serving flag with no effect on the local server", file=sys.stderr)
    from tfrec.serving.security import is_loopback

    if not is_loopback(f"{args.host}:{args.port}") and (server.ssl_config is None or server.auth_token is None):
        print(
            f"tfrec serve: listening on {args.host}, beyond this machine, without "
            + " and ".join(
                w for w, off in (("TLS", server.ssl_config is None), ("a token", server.auth_token is None)) if off
            )
            + " (--ssl_config_file, --auth_token_file); anyone who reaches the port can call the model",
            file=sys.stderr,
        )
    server.start()
    for name, model in server.models.items():
        if not model.servables:
            print(f"tfrec serve: no version of '{name}' under {model.config.base_path} yet; polling", file=sys.stderr)
    scheme = "https" if server.ssl_config is not None else "http"
    rest = f"; REST API on {scheme}://{args.host}:{server.http_port}/v1/models/" if server.http_port else ""
    print(f"serving {', '.join(sorted(server.models))} on {args.host}:{server.port} (gRPC){rest}", flush=True)
    server.wait()
    return 0


def cmd_loadtest(args) -> int:
    _quiet_tensorflow()
    import pandas as pd

    from tfrec.serving.client import ServingClient
    from tfrec.serving.load_test import run_load_test

    frame = pd.read_parquet(args.examples).head(args.rows)
    security = {
        "root_certificates": args.root_certificates,
        "certificate_chain": args.client_cert,
        "private_key": args.client_key,
        "server_name": args.server_name,
        "auth_token_file": args.auth_token_file,
    }
    security = {k: v for k, v in security.items() if v is not None}
    with ServingClient(args.target, model_name=args.name, **security) as client:
        inputs = (
            client.retrieve_inputs(frame, k=args.k)
            if args.signature == "retrieve"
            else client.inputs_from_frame(args.signature, frame)
        )
    report = run_load_test(
        args.target,
        args.signature,
        inputs,
        clients=args.clients,
        seconds=args.seconds,
        model_name=args.name,
        client_options=security,
    )
    print(json.dumps(report, indent=2))
    return 0


def cmd_simulate(args) -> int:
    from tfrec.data.simulator import SimulatorConfig, simulate

    stem = os.path.splitext(args.out)[0]
    schema_path = stem + ".schema.yaml"
    if args.days is None:
        cfg = SimulatorConfig(num_sessions=args.sessions, seed=args.seed)
        data = simulate(cfg)
        data.impressions.to_parquet(args.out, index=False)
        data.schema().to_yaml(schema_path)
        print(json.dumps(data.summary(), indent=2))
        print(f"wrote {args.out} and its schema {schema_path}")
        return 0

    from tfrec.data.daily_logs import DriftConfig, simulate_days

    try:
        drift = DriftConfig(
            days=args.days,
            new_items_per_day=args.new_items_per_day,
            new_users_per_day=args.new_users_per_day,
            preference_drift=args.preference_drift,
            price_drift=args.price_drift,
        )
        cfg = SimulatorConfig(num_sessions=args.sessions, seed=args.seed)
    except ValueError as e:
        print(f"tfrec simulate: {e}", file=sys.stderr)
        return 2
    days = simulate_days(cfg, drift)
    width = max(2, len(str(len(days))))
    for day, data in enumerate(days, start=1):
        path = f"{stem}.day{day:0{width}d}.parquet"
        data.impressions.to_parquet(path, index=False)
        summary = data.summary()
        print(
            f"day {day}: {path}: {summary['impressions']} impressions, {summary['items']} items, "
            f"{summary['users']} users, CTR {summary['ctr']:.4f}"
        )
    days[0].schema().to_yaml(schema_path)
    print(f"wrote {len(days)} daily logs {stem}.day*.parquet and their schema {schema_path}")
    return 0


def cmd_validate(args) -> int:
    """Reads and validates files as `tfrec train --data` does and reports; exit 0 (warnings aside), 1 (no usable
    row) or 2 (a file cannot be read or does not fit the schema)."""
    # The same reader and validation as `tfrec train --data` (tfrec.data.readers).
    from tfrec.data.readers import DataFileError, read_tables
    from tfrec.data.validation import SchemaValidationError
    from tfrec.schema import FeatureSchema

    schema = FeatureSchema.from_yaml(args.schema)
    try:
        tables = read_tables(
            args.data, schema, csv_encoding=args.encoding, csv_delimiter=args.delimiter, require_rows=False
        )
    except (DataFileError, SchemaValidationError) as e:
        print(e, file=sys.stderr)
        return 2
    print(tables.accounting.summary())
    examples = tables.rejected_examples()
    if examples:
        print("first rejected rows by reason:")
        for reason, where in examples.items():
            print(f"  {reason}: {where}")
    if args.rejected and len(tables.rejected):
        tables.rejected.to_parquet(args.rejected, index=False)
        print(f"wrote {tables.accounting.rows_rejected} rejected rows with their reasons to {args.rejected}")
    for warning in tables.warnings():
        print(f"warning: {warning}", file=sys.stderr)
    if tables.accounting.rows_read == 0:
        print(f"tfrec validate: error: no data rows in any file ({len(tables.files)} read)", file=sys.stderr)
        return 1
    if tables.accounting.rows_used == 0:
        print(
            f"tfrec validate: error: no usable rows: all {tables.accounting.rows_read} rows read were rejected",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_predict(args) -> int:
    # Errors (a missing run file, an unknown signature, a file without a needed column) exit 2 through main.
    _quiet_tensorflow()
    from tfrec.jobs.predict import predict

    summary = predict(
        args.model,
        args.data,
        args.output,
        signature=args.signature,
        k=args.k,
        batch_size=args.batch_size,
        chunk_rows=args.chunk_rows,
        rejected=args.rejected,
        csv_encoding=args.encoding,
        csv_delimiter=args.delimiter,
        as_of=args.as_of,
    )
    print(summary.text())
    if summary.rows_used == 0:
        print("tfrec predict: no row was scored", file=sys.stderr)
        return 1
    return 0


def cmd_ab(args) -> int:
    _quiet_tensorflow()
    from tfrec.jobs.offline_ab import format_table, offline_ab

    result = offline_ab(
        args.logs, args.candidate, baseline=args.baseline, output_dir=args.output, resamples=args.resamples
    )
    print(format_table(result))
    if args.output:
        print(f"wrote {os.path.join(args.output, 'ab.md')}, ab.json and ab.html")
    return 0


def cmd_online_retail(args) -> int:
    from tfrec.data.online_retail import load_online_retail

    data = load_online_retail(args.path, cutoff=args.cutoff, horizon_end=args.horizon_end)
    print(json.dumps(data.summary(), indent=2, default=str))
    print(json.dumps(data.accounting, indent=2, default=str))
    return 0


def cmd_realistic_search(args) -> int:
    from tfrec.data.realistic_search import RealisticSearchConfig, generate_realistic_search

    cfg = RealisticSearchConfig(num_queries=args.num_queries, seed=args.seed)
    rows = generate_realistic_search(cfg, catalog_path=args.catalog)
    folder = os.path.dirname(args.output)
    if folder:
        os.makedirs(folder, exist_ok=True)
    rows.to_parquet(args.output, index=False)
    print(
        f"wrote {args.output}: {len(rows)} rows, {rows['query_id'].nunique()} queries, "
        f"{rows['item_id'].nunique()} items, click rate {rows['click'].mean():.3f}"
    )
    print(f"relevance counts: {rows['relevance'].value_counts().sort_index().to_dict()}")
    return 0


def cmd_tune(args) -> int:
    _quiet_tensorflow()
    from tfrec.tuning.tuner import tune

    try:
        result = tune(
            args.config,
            args.space,
            trials=args.trials,
            algorithm=args.algorithm,
            output_dir=args.output_dir,
            objective=args.objective,
            seed=args.seed,
        )
    except RuntimeError as e:  # KerasTuner: too many failed trials in a row
        print(f"tfrec tune: error: {e}", file=sys.stderr)
        return 1
    if result.best is None and result.trials:
        print("tfrec tune: no trial finished with a score; see the summary", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="tfrec", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("quickstart", help="simulate -> train -> evaluate on the embedded default data")
    p.add_argument(
        "--config",
        default=_default_config(),
        help="job YAML (default: training/configs/quickstart.yaml of the cwd or the source tree; "
        "none found: the documented defaults)",
    )
    p.add_argument(
        "--output-dir",
        default=None,
        help="run directory (default: the config's output_dir, runs/quickstart relative to the cwd)",
    )
    p.add_argument("--epochs", type=int, default=None, help="passes over the training split (default: training.epochs)")
    p.set_defaults(fn=cmd_quickstart)

    p = sub.add_parser("train", help="a training job from a config: simulator or your own tables; resumable")
    p.add_argument(
        "--config", default=None, help="job YAML (default: the quickstart config; with --data, the documented defaults)"
    )
    p.add_argument(
        "--output-dir",
        default=None,
        help="run directory (default: the config's output_dir; with --data and no --config, "
        "runs/<shape> relative to the cwd)",
    )
    p.add_argument("--epochs", type=int, default=None, help="passes over the training split (default: training.epochs)")
    p.add_argument(
        "--strategy",
        default=None,
        help="auto, default, mirrored, multi_worker or one_device (default: training.strategy)",
    )
    p.add_argument(
        "--data",
        nargs="+",
        default=None,
        help="CSV/parquet files, globs or folders to train on (default: data.paths; sets data.source: files)",
    )
    p.add_argument("--schema", default=None, help="schema YAML mapping columns to roles (default: data.schema)")
    p.add_argument("--shape", default=None, help="search, interactions or transactions (default: data.shape)")
    p.add_argument("--encoding", default=None, help="encoding of CSV files, e.g. latin-1 (default: data.csv_encoding)")
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="delete the backup of an interrupted run and start from scratch (default: resume)",
    )
    p.add_argument(
        "--init-from",
        default=None,
        metavar="PREVIOUS_RUN",
        help="warm start: start from this run directory's model.keras (or a .keras file) on the new data; "
        "known ids keep their rows, new ids get fresh ones; a backup to resume from wins "
        "(default: training.init_from)",
    )
    p.set_defaults(fn=cmd_train)

    p = sub.add_parser("evaluate", help="evaluate a run directory: metrics.json, report.html, a summary")
    p.add_argument("--run-dir", required=True, help="a run directory holding model.keras and config.yaml (required)")
    p.add_argument("--output", default=None, help="folder for metrics.json and report.html (default: --run-dir)")
    p.set_defaults(fn=cmd_evaluate)

    p = sub.add_parser("cold-start", help="retrieval of never-seen items: BERT towers vs id-only")
    p.add_argument(
        "--config",
        default=_default_config(),
        help="job YAML (default: training/configs/quickstart.yaml of the cwd or the source tree)",
    )
    p.add_argument(
        "--held-out", type=float, default=0.15, help="share of items removed from training, in (0, 1) (default: 0.15)"
    )
    p.add_argument("--k", type=int, default=50, help="cut-off of the reported Recall@K (default: 50)")
    p.add_argument("--epochs", type=int, default=None, help="passes over the training split (default: training.epochs)")
    p.set_defaults(fn=cmd_cold_start)

    p = sub.add_parser(
        "export",
        help="export a run's model (tfrec export RUN_DIR) or a .keras file as a TF Serving SavedModel version",
    )
    p.add_argument(
        "run_dir",
        nargs="?",
        default=None,
        help="a run directory any tfrec job wrote: its model.keras, catalog.parquet, examples.parquet and "
        "metrics.json are used (default: none; then --model, --catalog and --base-dir)",
    )
    p.add_argument("--model", default=None, help="a .keras file written by a tfrec job (default: RUN_DIR/model.keras)")
    p.add_argument(
        "--catalog",
        default=None,
        help="parquet of the items retrieve searches, with the schema's item columns (default: "
        "RUN_DIR/catalog.parquet; not needed for a user-value model)",
    )
    p.add_argument(
        "--examples",
        default=None,
        help="parquet rows for the warm-up requests (default: RUN_DIR/examples.parquet, else the catalog's "
        "first rows, item signatures only)",
    )
    p.add_argument(
        "--base-dir",
        default=None,
        help="TF Serving model base directory; the version goes to <base-dir>/<name>/<version> "
        "(default: RUN_DIR/models)",
    )
    p.add_argument("--name", default="tfrec", help="model name: folder and model_spec.name (default: tfrec)")
    p.add_argument(
        "--version",
        type=int,
        default=None,
        help="version number (default: one above the highest present, 1 for the first)",
    )
    p.add_argument("--max-k", type=int, default=100, help="most items retrieve returns per query (default: 100)")
    p.add_argument("--keep", type=int, default=3, help="newest versions kept, older ones removed; 0 = all (default: 3)")
    p.add_argument(
        "--retrieval-index",
        default="brute_force",
        choices=["brute_force", "partitioned"],
        help="how `retrieve` searches the catalog: brute_force (exact) or partitioned (k-means inverted "
        "file, large catalogs) (default: brute_force)",
    )
    p.add_argument(
        "--clusters",
        type=int,
        default=None,
        help="partitioned: number of partitions (default: about sqrt(catalog size))",
    )
    p.add_argument(
        "--probe",
        type=int,
        default=None,
        help="partitioned: partitions scanned per query (default: clusters // 16, at least 1)",
    )
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser(
        "serve",
        help="local TF Serving: TF Serving's flags, gRPC and REST APIs over a model base path",
        description="Serves exports like tensorflow_model_server, taking its flags (see tfrec/serving/flags.py).",
    )
    from tfrec.serving.flags import add_serve_arguments

    add_serve_arguments(p)
    p.set_defaults(fn=cmd_serve)

    p = sub.add_parser("loadtest", help="N concurrent clients for T seconds on loopback")
    p.add_argument(
        "--target",
        default="127.0.0.1:8500",
        help="host:port of the gRPC server, loopback only (default: 127.0.0.1:8500)",
    )
    p.add_argument("--name", default="tfrec", help="served model name (default: tfrec)")
    p.add_argument("--examples", required=True, help="parquet of rows to send (required)")
    p.add_argument("--rows", type=int, default=1, help="rows per request, from the top of --examples (default: 1)")
    p.add_argument(
        "--signature",
        default="score",
        help="signature to call: score, retrieve, encode_query, encode_item, user_value (default: score)",
    )
    p.add_argument("--k", type=int, default=10, help="retrieve: items per query (default: 10)")
    p.add_argument("--clients", type=int, default=1, help="concurrent clients, at most 64 (default: 1)")
    p.add_argument("--seconds", type=float, default=10.0, help="duration in seconds, at most 300 (default: 10.0)")
    p.add_argument("--root_certificates", default=None, help="PEM CA of a TLS server's certificate (turns TLS on)")
    p.add_argument("--client_cert", default=None, help="PEM client certificate, for mutual TLS (with --client_key)")
    p.add_argument("--client_key", default=None, help="PEM key of --client_cert")
    p.add_argument("--server_name", default=None, help="name on the server's certificate, e.g. localhost")
    p.add_argument(
        "--auth_token_file",
        default=None,
        help="file holding the server's bearer token (default: $TFREC_SERVING_TOKEN, then $TFREC_SERVING_TOKEN_FILE)",
    )
    p.set_defaults(fn=cmd_loadtest)

    p = sub.add_parser("simulate", help="write simulated impressions and their schema")
    p.add_argument(
        "--out",
        required=True,
        help="parquet file for the impressions; the schema goes next to it as <out>.schema.yaml (required)",
    )
    p.add_argument(
        "--sessions",
        type=int,
        default=100_000,
        help="search sessions to simulate, per day with --days (default: 100000)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed; equal seeds give equal data (default: 0)")
    p.add_argument(
        "--days",
        type=int,
        default=None,
        help="write one log per day with drift, <out>.day01.parquet ... (new items and users arrive, "
        "preferences and prices shift; see tfrec.data.daily_logs)",
    )
    p.add_argument(
        "--new-items-per-day",
        type=float,
        default=0.03,
        help="with --days: new items per day, as a share of the first day's catalog (default: 0.03)",
    )
    p.add_argument(
        "--new-users-per-day",
        type=float,
        default=0.03,
        help="with --days: new users per day, as a share of the first day's users (default: 0.03)",
    )
    p.add_argument(
        "--preference-drift",
        type=float,
        default=0.25,
        help="with --days: daily step of the users' log category interests (default: 0.25)",
    )
    p.add_argument(
        "--price-drift",
        type=float,
        default=0.03,
        help="with --days: daily log price change per category (default: 0.03)",
    )
    p.set_defaults(fn=cmd_simulate)

    p = sub.add_parser("validate", help="check CSV/parquet files against a schema, count rejected rows")
    p.add_argument(
        "--data",
        required=True,
        nargs="+",
        help="CSV/parquet files, globs or folders (a folder: its CSV and parquet files) (required)",
    )
    p.add_argument("--schema", required=True, help="schema YAML mapping columns to roles (required)")
    p.add_argument("--encoding", default="utf-8", help="encoding of CSV files, e.g. latin-1 or cp1252 (default: utf-8)")
    p.add_argument("--delimiter", default=",", help="field delimiter of CSV files (default: ,)")
    p.add_argument(
        "--rejected", default=None, help="parquet file for the rejected rows with their reasons (default: not written)"
    )
    p.set_defaults(fn=cmd_validate)

    p = sub.add_parser("predict", help="score CSV/parquet files with a run's model or its export, in bounded memory")
    p.add_argument(
        "model",
        metavar="RUN_DIR|EXPORT_DIR",
        help="a run directory (model.keras, config.yaml) or a SavedModel export: a version folder "
        "<base>/<name>/<version> or the model folder <base>/<name> (its newest version)",
    )
    p.add_argument("--data", required=True, nargs="+", help="CSV/parquet files, globs or folders to score (required)")
    p.add_argument("--output", required=True, help="parquet file for the key columns and predictions (required)")
    p.add_argument(
        "--signature",
        default="serving_default",
        help="serving_default, score, encode_query, encode_item, user_value or retrieve: one the model has "
        "(default: serving_default)",
    )
    p.add_argument("--k", type=int, default=10, help="retrieve: items per row (default: 10)")
    p.add_argument("--batch-size", type=int, default=1024, help="rows per model call (default: 1024)")
    p.add_argument(
        "--chunk-rows", type=int, default=65_536, help="rows read, validated and written at a time (default: 65536)"
    )
    p.add_argument(
        "--rejected", default=None, help="parquet file for the rejected rows (default: <output>.rejected.parquet)"
    )
    p.add_argument("--encoding", default=None, help="encoding of CSV files (default: the run's, else utf-8)")
    p.add_argument("--delimiter", default=None, help="field delimiter of CSV files (default: the run's, else ,)")
    p.add_argument(
        "--as-of",
        default=None,
        help="transactions runs: last day the customer features see (default: the run's data.cutoff)",
    )
    p.set_defaults(fn=cmd_predict)

    p = sub.add_parser(
        "ab", help="offline A/B: a model's clicks and revenue estimated from logged impressions with propensities"
    )
    p.add_argument(
        "--logs",
        required=True,
        nargs="+",
        help="CSV/parquet files, globs or folders of logged impressions: the model's columns, session_id, "
        "position, propensity, click (and purchase_value)",
    )
    p.add_argument("--candidate", required=True, metavar="RUN_DIR|EXPORT_DIR", help="the model to test")
    p.add_argument("--baseline", default=None, metavar="RUN_DIR|EXPORT_DIR", help="a second model (e.g. the live one)")
    p.add_argument("--output", default=None, help="folder for ab.md, ab.json and ab.html")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples over sessions (default: 1000)")
    p.set_defaults(fn=cmd_ab)

    p = sub.add_parser("online-retail", help="summarise the UCI Online Retail adapter's output")
    p.add_argument(
        "--path",
        default=None,
        help="the Online Retail parquet file (default: $TFREC_ONLINE_RETAIL, else "
        "../shared/data/online_retail.parquet relative to the cwd or the repository)",
    )
    p.add_argument(
        "--cutoff", default="2011-08-31", help="last day of the calibration period, YYYY-MM-DD (default: 2011-08-31)"
    )
    p.add_argument(
        "--horizon-end",
        default="2011-12-09",
        help="last day of the horizon whose spend is the label, YYYY-MM-DD (default: 2011-12-09)",
    )
    p.set_defaults(fn=cmd_online_retail)

    p = sub.add_parser(
        "simulate-search", help="realistic-text search rows: real Online Retail titles, noisy planted-intent queries"
    )
    p.add_argument(
        "--catalog",
        default=None,
        help="the Online Retail parquet file (default: $TFREC_ONLINE_RETAIL, else "
        "../shared/data/online_retail.parquet relative to the cwd or the repository)",
    )
    p.add_argument("--output", required=True, help="parquet file for the rows (required)")
    p.add_argument("--num-queries", type=int, default=3000, help="distinct queries, 15 rows each (default: 3000)")
    p.add_argument("--seed", type=int, default=0, help="random seed; equal seeds give equal rows (default: 0)")
    p.set_defaults(fn=cmd_realistic_search)

    p = sub.add_parser("tune", help="hyperparameter search over a job's config keys with KerasTuner; resumable")
    p.add_argument("--config", required=True, help="job YAML, as for tfrec train (required)")
    p.add_argument(
        "--space",
        required=True,
        help="search space YAML: dotted config keys -> {type: float|int|choice|bool, ...} (required)",
    )
    p.add_argument("--trials", type=int, default=10, help="trials in all, earlier runs' included (default: 10)")
    p.add_argument(
        "--algorithm",
        choices=("bayesian", "hyperband", "random"),
        default="bayesian",
        help="KerasTuner oracle; hyperband's budget is training.epochs (default: bayesian)",
    )
    p.add_argument(
        "--output-dir", default=None, help="search directory; rerun = resume (default: the job's output_dir + _tune)"
    )
    p.add_argument(
        "--objective",
        default=None,
        help="metrics.json key, e.g. ctr.model.auc or history.val_loss; NAME:max|min for others "
        "(default: the model's recall@50 for the job's shape, value.model.normalized_gini for transactions)",
    )
    p.add_argument("--seed", type=int, default=1, help="the oracle's random seed, >= 1 (default: 1)")
    p.set_defaults(fn=cmd_tune)

    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"tfrec {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
