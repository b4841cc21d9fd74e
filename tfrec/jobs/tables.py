"""The job on the user's own tables: read, validate, prepare, split, train, evaluate.

`run(config)` reads the CSV/parquet files of `config.data.paths`, maps their
columns with `config.data.schema`, validates them with row accounting,
prepares them for `config.data.shape` (`search`, `interactions` or
`transactions`, see `tfrec.data.shapes`), splits them without leakage, trains
the two-tower model (`tfrec.jobs.simulated.train`) and evaluates it beside
baselines that are always printed with it:

* search: CTR AUC / log loss, relevance RMSE, NDCG@K per query and retrieval
  Recall@K, against item popularity (and the logged order when positions are
  logged);
* interactions: retrieval Recall@K / NDCG@K / MRR over the whole catalog with
  the user's history as the query, and CTR AUC on sampled negatives, against
  popularity;
* transactions: normalised Gini, Spearman, decile MAPE and AUC of "spends at
  all" of the user-value head, against the calibration spend scaled to the
  horizon and an RFM regressor.

The run directory gets `model.keras`, `metrics.json`, `history.csv`, the
resolved `config.yaml` (schema inline, absolute paths), `test.parquet`,
`examples.parquet`, `catalog.parquet` (with items) and `rejected.parquet`
(rows rejected, with reason and file). `evaluate_run(run_dir)` reloads the
model and the data of a run and recomputes `metrics.json`.

Example:

```python
config = JobConfig.from_yaml("training/configs/transactions.yaml")
result = run(config)
result["metrics"]["value"]["model"]["normalized_gini"]
evaluate_run(config.output_dir)          # the same numbers, recomputed
```
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import time

import numpy as np
import pandas as pd

from tfrec import metrics as M
from tfrec.console import log as _log
from tfrec.data import shapes as S
from tfrec.data.readers import Tables, read_tables, reject_rows
from tfrec.evaluation.metric_sets import ranking_metrics
from tfrec.jobs.config import JobConfig
from tfrec.schema import FeatureSchema


# ------------------------------------------------------------------ the data
def resolve_schema(schema) -> FeatureSchema:
    """The `FeatureSchema` of `data.schema` (a YAML path, a mapping or a schema)."""
    if schema is None:
        raise ValueError("data.schema: no column mapping given (a schema YAML path or an inline mapping)")
    if isinstance(schema, FeatureSchema):
        return schema
    if isinstance(schema, dict):
        return FeatureSchema.from_dict(schema)
    if not os.path.exists(str(schema)):
        raise FileNotFoundError(f"data.schema: schema file not found: {schema}")
    return FeatureSchema.from_yaml(schema)


def _check_files_config(config: JobConfig) -> None:
    data = config.data
    if data.source != "files":
        raise ValueError(f"tfrec.jobs.tables needs data.source 'files', got {data.source!r}")
    if not data.paths:
        raise ValueError("data.paths: no data files given (files, globs or folders)")
    if data.shape is None:
        raise ValueError("data.shape: say which shape the data has: 'search', 'interactions' or 'transactions'")
    split_by = data.resolved_split_by()
    if data.shape != "search" and split_by != "time":
        raise ValueError(f"data.split_by: {data.shape} data is split by time only, got {data.split_by!r}")


def load_data(config: JobConfig) -> tuple[S.PreparedData, Tables]:
    """Reads, validates and prepares the files of `config.data`; returns (prepared splits, tables)."""
    _check_files_config(config)
    data = config.data
    schema = resolve_schema(data.schema)
    qc = data.quantity_column
    read_schema = schema
    amount = None
    if data.shape == "transactions":
        if schema.value_label:
            # A transaction amount may be negative (a return): read it as a
            # plain number, not as a non-negative label.
            amount = schema.value_label
            read_schema = dataclasses.replace(schema, value_label=None,
                                              user_numeric=list(schema.user_numeric) + [amount])
        elif schema.item_price and qc:
            amount = "_amount"
        else:
            raise S.ShapeError(
                "data.shape 'transactions' needs an amount: map value_label to the amount column, or map "
                "item_price and set data.quantity_column (amount = quantity x price)")
    tables = read_tables(data.paths, read_schema, format=data.format, csv_encoding=data.csv_encoding,
                         csv_delimiter=data.csv_delimiter, required_extra=[qc] if qc else [])
    frame = tables.frame
    if qc:
        quantity = pd.to_numeric(frame[qc], errors="coerce")
        tables = reject_rows(tables, ~np.isfinite(quantity.to_numpy(dtype=np.float64, na_value=np.nan)),
                             f"{qc}: not a number")
        tables.frame[qc] = pd.to_numeric(tables.frame[qc]).astype(np.float64)
        if data.shape == "interactions":
            tables = reject_rows(tables, tables.frame[qc].to_numpy() <= 0,
                                 f"{qc}: quantity <= 0 (a return, not an interaction)")
    if data.shape == "transactions":
        if amount == "_amount":
            tables.frame[amount] = tables.frame[qc] * tables.frame[schema.item_price]
        tables = reject_rows(tables, tables.frame[amount].isna().to_numpy(), f"{amount}: null in required field")
    kwargs = dict(valid_fraction=config.valid_fraction, seed=data.seed)
    if data.shape == "search":
        prepared = S.prepare_search(tables.frame, schema, split_by=data.resolved_split_by(),
                                    test_fraction=config.test_fraction, cutoff=data.cutoff, **kwargs)
    elif data.shape == "interactions":
        prepared = S.prepare_interactions(
            tables.frame, schema, test_fraction=config.test_fraction, cutoff=data.cutoff,
            negatives_per_positive=data.negatives_per_positive,
            history_window_days=data.history_window_days, **kwargs)
    else:
        kwargs["valid_fraction"] = data.value_valid_fraction
        prepared = S.prepare_transactions(tables.frame, schema, amount=amount, cutoff=data.cutoff,
                                          horizon_end=data.horizon_end,
                                          training_windows=data.value_training_windows,
                                          item_history=data.value_item_history, **kwargs)
    for name in ("train", "valid", "test"):
        if not len(getattr(prepared, name)):
            raise S.ShapeError(f"the {name} split is empty ({prepared.sizes()}, {prepared.info}); "
                               "check data.cutoff, the fractions and the size of the data")
    return prepared, tables


def resolved_config(config: JobConfig) -> JobConfig:
    """A copy with the schema inline and the data paths absolute, so the run directory is self-contained."""
    config = copy.deepcopy(config)
    schema = resolve_schema(config.data.schema)
    config.data.schema = {**schema.to_dict(), "history_length": schema.history_length}
    config.data.paths = [p if os.path.isabs(p) else os.path.abspath(p) for p in config.data.paths]
    return config


def model_config_for(config: JobConfig, shape: str) -> JobConfig:
    """The job config with what the shape's model needs; prints what it changed."""
    if shape != "transactions":
        return config
    config = copy.deepcopy(config)
    model = config.model
    if model.loss_weights["value"] <= 0:
        raise ValueError("model.loss_weights.value must be > 0 for data.shape 'transactions'")
    if model.value_detach_profile:
        _log("transactions: one row per customer, so the value head trains the user profile "
             "(model.value_detach_profile set to false)")
        model.value_detach_profile = False
    return config


# ----------------------------------------------------------------- evaluation
def grouped_ndcg(groups, gains, scores, k: int, min_rows: int = 2) -> tuple[float, int]:
    """Mean NDCG@k over groups (queries) of the rows ordered by `scores`.

    Gains are used as `2^gain - 1`. Ties in `scores` count against the
    better rows (pessimistic), so a constant scorer earns no credit. Only
    groups with at least `min_rows` rows and a positive gain count.
    Returns (mean NDCG, number of groups).
    """
    df = pd.DataFrame({"g": np.asarray(groups), "gain": np.asarray(gains, dtype=np.float64),
                       "score": np.asarray(scores, dtype=np.float64)})
    df["gain"] = np.power(2.0, df["gain"]) - 1.0
    size = df.groupby("g")["gain"].transform("size")
    best = df.groupby("g")["gain"].transform("max")
    df = df[(size >= min_rows) & (best > 0)]
    if not len(df):
        return float("nan"), 0
    discount = lambda rank: np.where(rank <= k, 1.0 / np.log2(rank + 1.0), 0.0)  # noqa: E731
    ordered = df.sort_values(["g", "score", "gain"], ascending=[True, False, True], kind="stable")
    rank = ordered.groupby("g").cumcount().to_numpy() + 1
    dcg = (ordered["gain"].to_numpy() * discount(rank))
    dcg = pd.Series(dcg).groupby(ordered["g"].to_numpy()).sum()
    ideal = df.sort_values(["g", "gain"], ascending=[True, False], kind="stable")
    irank = ideal.groupby("g").cumcount().to_numpy() + 1
    idcg = pd.Series(ideal["gain"].to_numpy() * discount(irank)).groupby(ideal["g"].to_numpy()).sum()
    return float((dcg / idcg).mean()), int(len(idcg))


def _retrieval_ranks(model, queries, catalog, schema, train_positives):
    """Ranks of each query's item over the catalog: model and popularity."""
    from tfrec.models.inference import encode_items, encode_queries

    row_of = pd.Series(np.arange(len(catalog)), index=catalog[schema.item_id].to_numpy())
    target = row_of.reindex(queries[schema.item_id].to_numpy()).to_numpy()
    keep = ~np.isnan(target)
    queries, target = queries.loc[keep], target[keep].astype(np.int64)
    ranks = {"model": M.ranks_of_targets(encode_queries(model, queries), encode_items(model, catalog), target)}
    pop = train_positives[schema.item_id].value_counts().reindex(catalog[schema.item_id]).fillna(0).to_numpy()
    ranks["popularity"] = (pop[None, :] >= pop[target][:, None]).sum(1) if len(target) else np.zeros(0)
    return ranks


def _sample(frame, n, seed):
    return frame.sample(n, random_state=seed) if len(frame) > n else frame


def _smoothed_item_mean(train, item, label, prior_weight=20.0):
    mean = train[label].mean()
    agg = train.groupby(item)[label].agg(["sum", "count"])
    return (agg["sum"] + prior_weight * mean) / (agg["count"] + prior_weight), mean


def evaluate_search(model, data: S.PreparedData, ks, max_queries, seed=0, min_query_rows=2,
                    arrays: dict | None = None) -> dict:
    """CTR / relevance, per-query NDCG and retrieval on the test queries, beside popularity.

    `arrays`, if given, receives the labels, predictions and ranks behind the metrics.
    """
    arrays = {} if arrays is None else arrays
    from tfrec.models.inference import predict_dataframe

    schema, train, test = data.schema, data.train, data.test
    item = schema.item_id
    if schema.position:
        # One pass: the rows at their logged positions (for CTR), then at the
        # top slot (P(click | seen), for ranking within the query).
        both = predict_dataframe(model, pd.concat([test, test.assign(**{schema.position: 1.0})],
                                                  ignore_index=True))
        logged = {k: v[:len(test)] for k, v in both.items()}
        at_top = {k: v[len(test):] for k, v in both.items()}
    else:
        logged = at_top = predict_dataframe(model, test)
    result = {"rows": int(len(test)), "queries": int(test[S.QUERY_KEY_COLUMN].nunique())}
    scorers = {}
    if schema.click_label:
        y = test[schema.click_label].to_numpy()
        item_ctr, mean_ctr = _smoothed_item_mean(train, item, schema.click_label)
        base = test[item].map(item_ctr).fillna(mean_ctr).to_numpy()
        result["ctr"] = {name: {"auc": M.auc(y, p), "log_loss": M.log_loss(y, p),
                                "ece": M.expected_calibration_error(y, p)}
                         for name, p in (("model", logged["ctr"]), ("popularity", base))}
        arrays["ctr"] = (y, {"model": logged["ctr"], "popularity": base})
        scorers = {"model": at_top["ctr"], "popularity": base}
        gains = y
    if schema.relevance_label:
        low, high = schema.relevance_range
        y = test[schema.relevance_label].to_numpy()
        item_rel, mean_rel = _smoothed_item_mean(train, item, schema.relevance_label)
        base = test[item].map(item_rel).fillna(mean_rel).to_numpy()
        good = y >= low + 0.5 * (high - low)
        result["relevance"] = {
            name: {"rmse": float(np.sqrt(np.mean((p - y) ** 2))), "auc": M.auc(good, p)}
            for name, p in (("model", at_top["relevance"]), ("item_mean", base),
                            ("global_mean", np.full(len(y), mean_rel)))}
        scorers = {"model": at_top["relevance"], "item_mean": base}
        gains = y - low
    if schema.position:
        scorers["logged_order"] = -test[schema.position].to_numpy(dtype=np.float64)
    ndcg = {}
    for name, scores in scorers.items():
        ndcg[name] = {}
        for k in ks:
            value, n = grouped_ndcg(test[S.QUERY_KEY_COLUMN], gains, scores, k, min_rows=min_query_rows)
            ndcg[name][f"ndcg@{k}"] = value
        ndcg["queries_scored"] = n
    result["query_ndcg"] = ndcg
    positive = _positive_mask(test, schema)
    train_pos = train[_positive_mask(train, schema)]
    queries = _sample(test[positive].drop_duplicates([S.QUERY_KEY_COLUMN, item]), max_queries, seed)
    ranks = _retrieval_ranks(model, queries, data.catalog, schema, train_pos)
    arrays["ranks"] = ranks
    result["retrieval"] = ranking_metrics(ranks, ks)
    result["retrieval"]["queries"] = int(len(ranks["model"]))
    return result


def _positive_mask(frame, schema):
    if schema.click_label:
        return frame[schema.click_label].to_numpy() > 0
    low, high = schema.relevance_range
    return frame[schema.relevance_label].to_numpy() >= low + 0.5 * (high - low)


def evaluate_interactions(model, data: S.PreparedData, ks, max_queries, seed=0, arrays: dict | None = None) -> dict:
    """Retrieval over the whole catalog with the history as the query, and CTR on sampled negatives."""
    arrays = {} if arrays is None else arrays
    from tfrec.models.inference import predict_dataframe

    schema, train, test = data.schema, data.train, data.test
    click = schema.click_label
    positives = test[test[click] > 0]
    queries = _sample(positives.drop_duplicates([schema.user_id, schema.item_id]), max_queries, seed)
    ranks = _retrieval_ranks(model, queries, data.catalog, schema, train[train[click] > 0])
    arrays["ranks"] = ranks
    result = {"retrieval": ranking_metrics(ranks, ks)}
    result["retrieval"]["queries"] = int(len(ranks["model"]))
    y = test[click].to_numpy()
    if (y == 0).any():
        p = predict_dataframe(model, test, outputs=("ctr",))["ctr"]
        counts = train[train[click] > 0][schema.item_id].value_counts()
        base = test[schema.item_id].map(counts).fillna(0).to_numpy(dtype=np.float64)
        result["ctr"] = {name: {"auc": M.auc(y, s)} for name, s in (("model", p), ("popularity", base))}
        result["ctr"]["model"].update(log_loss=M.log_loss(y, p), ece=M.expected_calibration_error(y, p))
        arrays["ctr"] = (y, {"model": p})
        result["ctr"]["rows"] = int(len(y))
    return result


def evaluate_transactions(model, data: S.PreparedData, arrays: dict | None = None) -> dict:
    """User value against the calibration spend scaled to the horizon and an RFM regressor."""
    arrays = {} if arrays is None else arrays
    from tfrec.models.inference import predict_user_value
    from tfrec.models.rfm import RFMRegressor

    test = data.test
    y = test[S.VALUE_COLUMN].to_numpy()
    fit_on = pd.concat([data.train, data.valid], ignore_index=True)
    predictions = {
        "model": predict_user_value(model, test)["user_value"],
        "calibration_scaled": test["monetary"].to_numpy() * data.info["horizon_days"]
        / test["observed_days"].to_numpy(),
        "rfm": RFMRegressor().fit(fit_on, fit_on[S.VALUE_COLUMN]).predict(test),
    }
    arrays["value"] = (y, predictions)
    result = {}
    for name, p in predictions.items():
        result[name] = {
            "normalized_gini": M.normalized_gini(y, p),
            "spearman": M.spearman(y, p),
            "decile_mape": M.decile_mape(y, p),
            "spend_auc": M.auc(y > 0, p),
            "mean_predicted": float(np.mean(p)),
        }
    result["customers"] = int(len(test))
    result["mean_actual"] = float(np.mean(y))
    result["zero_share"] = float(np.mean(y == 0))
    return result


def evaluate(model, data: S.PreparedData, config: JobConfig, arrays: dict | None = None) -> dict:
    """The metrics of `data.shape`, model beside its baselines (`arrays` gets what they are computed from)."""
    ks, max_q, seed = list(config.evaluation.ks), config.evaluation.max_queries, config.data.seed
    if data.shape == "search":
        return {"search": evaluate_search(model, data, ks, max_q, seed, config.data.min_query_rows, arrays)}
    if data.shape == "interactions":
        return {"interactions": evaluate_interactions(model, data, ks, max_q, seed, arrays)}
    return {"value": evaluate_transactions(model, data, arrays)}


def write_html_report(metrics: dict, arrays: dict, ks, path: str, context: dict) -> str | None:
    """`report.html` with `tfrec.evaluation.report` where this version has it; else None."""
    try:
        from tfrec.evaluation.report import write_report
        from tfrec.evaluation.result import EvaluationResult
    except ImportError:
        return None
    flat = {}
    for part in ("search", "interactions"):
        block = metrics.get(part, {})
        flat.update({k: block[k] for k in ("ctr", "retrieval") if k in block})
    if "value" in metrics:
        flat["value"] = metrics["value"]
    ctr = arrays.get("ctr")
    value = arrays.get("value")
    result = EvaluationResult(
        metrics=flat, ks=list(ks),
        ctr_labels=None if ctr is None else ctr[0], ctr_predictions=None if ctr is None else ctr[1],
        retrieval_ranks=arrays.get("ranks"),
        value_labels=None if value is None else value[0], value_predictions=None if value is None else value[1],
        context=context)
    return write_report(result, path, title=f"tfrec evaluation: {metrics.get('shape', '')} data")


def summary_lines(metrics: dict) -> list[str]:
    """The model and its baselines, one metric per line."""
    lines = []

    def table(title, block, keys):
        names = [n for n, v in block.items() if isinstance(v, dict)]
        lines.append(f"{title:<22}" + "".join(f"{n:>20}" for n in names))
        for key in keys:
            lines.append(f"  {key:<20}" + "".join(f"{block[n].get(key, float('nan')):>20.4f}" for n in names))

    if "value" in metrics:
        v = metrics["value"]
        table(f"user value ({v['customers']} customers)", v,
              ["normalized_gini", "spearman", "decile_mape", "spend_auc", "mean_predicted"])
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


# ------------------------------------------------------------------------ jobs
def _write_metrics(metrics, directory):
    path = os.path.join(directory, "metrics.json")
    with open(path, "w") as f:
        json.dump(metrics, f, indent=2, default=float)
    return path


def _report(metrics, arrays, config, data, tables, directory):
    context = {"data": ", ".join(tables.files), "shape": data.shape, "split": data.sizes(),
               "rows": f"{tables.accounting.rows_read:,} read, {tables.accounting.rows_used:,} used, "
                       f"{tables.accounting.rows_rejected:,} rejected"}
    path = write_html_report(metrics, arrays, config.evaluation.ks, os.path.join(directory, "report.html"), context)
    if path:
        _log(f"wrote {path}")


def run(config: JobConfig) -> dict:
    """Read, validate, prepare, split, train, evaluate; write the run directory.

    Returns `{"model", "metrics", "data", "tables", "config"}`.
    """
    from tfrec.jobs.simulated import train

    t0 = time.time()
    _check_files_config(config)
    config = resolved_config(config)
    out_dir = config.output_dir
    os.makedirs(out_dir, exist_ok=True)
    config.to_yaml(os.path.join(out_dir, "config.yaml"))
    data, tables = load_data(config)
    _log(f"read {len(tables.files)} file(s): " + tables.accounting.summary().replace("\n", "; "))
    if len(tables.rejected):
        tables.rejected.to_parquet(os.path.join(out_dir, "rejected.parquet"), index=False)
    _log(f"{data.shape}: split {data.sizes()} {({k: v for k, v in data.info.items() if k != 'user_id'})}")
    train_config = model_config_for(config, data.shape)
    t_train = time.time()
    model, history = train(train_config, data.schema, data.train, data.valid, run_dir=out_dir)
    train_seconds = time.time() - t_train
    if model is None:
        _log("training done on this non-chief worker; the chief evaluates and writes the run directory")
        return {"model": None, "metrics": None, "data": data, "tables": tables, "config": config}
    model_path = os.path.join(out_dir, "model.keras")
    if not os.path.exists(model_path):
        model.save(model_path)
    _log(f"trained in {train_seconds:.0f}s; model {model_path}")
    arrays = {}
    metrics = evaluate(model, data, config, arrays)
    metrics.update({
        "shape": data.shape,
        "rows": tables.accounting.to_dict(),
        "split": data.sizes(),
        "split_info": data.info,
        "files": tables.files,
        "train_seconds": train_seconds,
        "history": {k: [None if v is None else float(v) for v in vals]
                    for k, vals in getattr(history, "history", {}).items()},
    })
    _write_metrics(metrics, out_dir)
    _report(metrics, arrays, config, data, tables, out_dir)
    data.test.to_parquet(os.path.join(out_dir, "test.parquet"), index=False)
    data.test.head(64).to_parquet(os.path.join(out_dir, "examples.parquet"), index=False)
    if data.catalog is not None:
        data.catalog.to_parquet(os.path.join(out_dir, "catalog.parquet"), index=False)
    print("\n".join(summary_lines(metrics)), flush=True)
    _log(f"done in {time.time() - t0:.0f}s; run directory {out_dir}")
    return {"model": model, "metrics": metrics, "data": data, "tables": tables, "config": config}


def evaluate_run(run_dir: str, output_dir: str | None = None) -> dict:
    """Reloads a run's model and data (per its `config.yaml`) and recomputes its metrics.

    Writes `metrics.json` to `output_dir` (default: `run_dir`, keeping the
    run's training history and timings) and returns the metrics.
    """
    import keras

    import tfrec.models  # noqa: F401  (registers the layers for loading)

    config_path = os.path.join(run_dir, "config.yaml")
    model_path = os.path.join(run_dir, "model.keras")
    for path in (config_path, model_path):
        if not os.path.exists(path):
            raise FileNotFoundError(f"evaluate_run: {path} not found; is {run_dir!r} a tfrec run directory?")
    config = JobConfig.from_yaml(config_path)
    data, tables = load_data(config)
    model = keras.models.load_model(model_path)
    arrays = {}
    metrics = evaluate(model, data, config, arrays)
    previous = {}
    old_path = os.path.join(run_dir, "metrics.json")
    if os.path.exists(old_path):
        with open(old_path) as f:
            previous = json.load(f)
    metrics.update({k: v for k, v in previous.items() if k in ("train_seconds", "history")})
    metrics.update({"shape": data.shape, "rows": tables.accounting.to_dict(), "split": data.sizes(),
                    "split_info": data.info, "files": tables.files})
    target = output_dir or run_dir
    os.makedirs(target, exist_ok=True)
    _write_metrics(metrics, target)
    _report(metrics, arrays, config, data, tables, target)
    print("\n".join(summary_lines(metrics)), flush=True)
    return metrics
