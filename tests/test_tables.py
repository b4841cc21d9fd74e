"""Bring your own tables: each data shape end to end on small tables built here."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import yaml

from tfrec.data import shapes as S
from tfrec.data.readers import DataFileError, read_tables
from tfrec.data.validation import SchemaValidationError
from tfrec.jobs.config import JobConfig
from tfrec.schema import FeatureSchema

CATEGORIES = ["boots", "sofa", "lamp", "kettle", "jacket", "desk"]
COLOURS = ["red", "black", "blue", "green", "white"]

TINY_MODEL = {
    "embedding_dim": 16,
    "id_embedding_dim": 8,
    "tower_units": [32],
    "expert_units": [16],
    "cross_layers": 1,
    "text": {
        "preset": None,  # a tiny BERT from scratch, whatever the bundled config reads text with
        "trainable": True,
        "vocabulary_size": 200,
        "hidden_dim": 16,
        "num_layers": 1,
        "num_heads": 2,
        "query_sequence_length": 6,
        "item_sequence_length": 8,
    },
}
TINY_TRAINING = {
    "epochs": 2,
    "batch_size": 64,
    "verbose": 0,
    "learning_rate": 0.01,
    "early_stopping_patience": 0,
    "tensorboard": False,
}


def _items(rng, n=60):
    cat = np.arange(n) % len(CATEGORIES)
    colour = rng.integers(0, len(COLOURS), n)
    return pd.DataFrame(
        {
            "sku": [f"sku{i:03d}" for i in range(n)],
            "title": [f"{COLOURS[c]} {CATEGORIES[k]}" for i, (c, k) in enumerate(zip(colour, cat))],
            "category": [CATEGORIES[k] for k in cat],
            "price": rng.gamma(2.0, 20.0, n).round(2),
        }
    )


def search_table(seed=0, sessions=300, graded=False):
    """Queries about a category; shown items of that category get clicked / judged relevant."""
    rng = np.random.default_rng(seed)
    items = _items(rng)
    rows = []
    t0 = pd.Timestamp("2024-01-01")
    for s in range(sessions):
        k = rng.integers(0, len(CATEGORIES))
        colour = COLOURS[rng.integers(0, len(COLOURS))]
        query = f"{colour} {CATEGORIES[k]}" + ("" if s % 3 else f" {s % 11}")
        same = items[items.category == CATEGORIES[k]]
        shown = pd.concat(
            [
                same.sample(4, random_state=int(rng.integers(1 << 30))),
                items.sample(4, random_state=int(rng.integers(1 << 30))),
            ]
        ).sample(frac=1, random_state=s)
        for pos, (_, it) in enumerate(shown.iterrows(), start=1):
            match = it.category == CATEGORIES[k]
            grade = 1 + int(match) + int(match and colour in it.title)
            click = float(rng.random() < (0.8 if match else 0.03) / (1 + 0.1 * pos))
            rows.append(
                {
                    "search_query": query,
                    "sku": it.sku,
                    "title": it.title,
                    "category": it.category,
                    "price": it.price,
                    "slot": pos,
                    "ts": t0 + pd.Timedelta(minutes=s),
                    **({"grade": grade} if graded else {"clicked": click}),
                }
            )
    return pd.DataFrame(rows)


def interactions_table(seed=0, users=150, events=16):
    """Each user buys mostly from one category."""
    rng = np.random.default_rng(seed)
    items = _items(rng)
    rows = []
    t0 = pd.Timestamp("2024-01-01")
    for u in range(users):
        fav = u % len(CATEGORIES)
        for _ in range(events):
            pool = items[items.category == CATEGORIES[fav]] if rng.random() < 0.85 else items
            it = pool.iloc[rng.integers(0, len(pool))]
            rows.append(
                {
                    "user": f"u{u}",
                    "country": ["UK", "FR"][u % 2],
                    "sku": it.sku,
                    "title": it.title,
                    "category": it.category,
                    "price": it.price,
                    "ts": t0 + pd.Timedelta(hours=int(rng.integers(0, 24 * 120))),
                }
            )
    return pd.DataFrame(rows)


def transactions_table(seed=0, customers=400):
    """Customers with a steady purchase rate and basket size over a year (some with returns)."""
    rng = np.random.default_rng(seed)
    rows = []
    t0 = pd.Timestamp("2023-01-01")
    for c in range(customers):
        rate = rng.lognormal(-3.2, 1.0)  # purchases per day
        basket = rng.lognormal(3.0, 0.6)
        n = rng.poisson(rate * 365)
        for day in np.sort(rng.integers(0, 365, n)):
            amount = round(float(rng.lognormal(np.log(basket), 0.3)), 2)
            rows.append(
                {
                    "customer": c,
                    "when": t0 + pd.Timedelta(days=int(day), hours=10),
                    "amount": amount,
                    "region": ["north", "south"][c % 2],
                }
            )
            if rng.random() < 0.05:
                rows.append(
                    {
                        "customer": c,
                        "when": t0 + pd.Timedelta(days=int(day), hours=12),
                        "amount": -amount,
                        "region": ["north", "south"][c % 2],
                    }
                )
    return pd.DataFrame(rows)


def _config(tmp_path, shape, paths, schema, **data):
    return JobConfig.from_dict(
        {
            "model": TINY_MODEL,
            "training": TINY_TRAINING,
            "evaluation": {"ks": [5, 20], "max_queries": 300},
            "data": {"source": "files", "paths": paths, "schema": schema, "shape": shape, **data},
            "output_dir": str(tmp_path / "run"),
        }
    )


def _example_config(tmp_path, name, paths, **data):
    """A config of training/configs/ on `paths`, with a tiny model and short training."""
    with open(os.path.join("training", "configs", f"{name}.yaml")) as f:
        raw = yaml.safe_load(f)
    raw["data"].update({"paths": paths, **data})
    text = {**raw["model"].get("text", {}), **TINY_MODEL["text"]}
    raw["model"].update({**TINY_MODEL, "text": text})
    raw["training"].update(TINY_TRAINING)
    raw["evaluation"] = {"ks": [5, 20], "max_queries": 300}
    raw["output_dir"] = str(tmp_path / "run")
    return JobConfig.from_dict(raw)


SEARCH_SCHEMA = {
    "query_text": "search_query",
    "item_id": "sku",
    "item_text": "title",
    "item_categorical": ["category"],
    "item_price": "price",
    "click_label": "clicked",
    "position": "slot",
    "event_time": "ts",
}


# -------------------------------------------------------------- reading files
def test_read_tables_globs_csv_and_parquet_with_accounting(tmp_path):
    df = interactions_table(users=30, events=4)
    df.loc[3, "price"] = -1.0  # rejected: negative price
    for i, start in enumerate(range(0, len(df), 40)):
        df.iloc[start : start + 40].to_csv(tmp_path / f"part-{i}.csv", index=False)
    df.tail(10).to_parquet(tmp_path / "extra.parquet")
    schema = FeatureSchema(user_id="user", item_id="sku", item_text="title", item_price="price", event_time="ts")
    tables = read_tables([str(tmp_path / "part-*.csv"), str(tmp_path / "extra.parquet")], schema)
    assert len(tables.files) == 4 and tables.files[0].endswith("part-0.csv")
    assert tables.accounting.rows_read == len(df) + 10
    assert tables.accounting.rows_rejected == 1 and len(tables.rejected) == 1
    assert tables.rejected["_source"].iloc[0].endswith("part-0.csv")
    assert tables.accounting.rows_used == len(tables.frame) == len(df) + 9
    assert pd.api.types.is_datetime64_any_dtype(tables.frame["ts"])
    # A folder stands for its files.
    assert len(read_tables(str(tmp_path), schema).files) == 4


def test_csv_encoding_option(tmp_path):
    df = pd.DataFrame(
        {
            "user": ["u1", "u2"],
            "sku": ["a", "b"],
            "title": ["café crème", "naïve déco"],
            "ts": ["2024-01-01 10:00", "2024-01-02 11:00"],
        }
    )
    path = tmp_path / "latin.csv"
    df.to_csv(path, index=False, encoding="latin-1", sep=";")
    schema = FeatureSchema(user_id="user", item_id="sku", item_text="title", event_time="ts")
    with pytest.raises(DataFileError, match=r"latin\.csv.*encoding 'utf-8'.*csv_encoding"):
        read_tables(str(path), schema, csv_delimiter=";")
    tables = read_tables(str(path), schema, csv_encoding="latin-1", csv_delimiter=";")
    assert tables.frame["title"].tolist() == ["café crème", "naïve déco"]


def test_mapping_that_does_not_fit_names_column_and_file(tmp_path):
    df = interactions_table(users=5, events=2)
    df.to_parquet(tmp_path / "good.parquet")
    df.drop(columns=["title"]).to_parquet(tmp_path / "bad.parquet")
    schema = FeatureSchema(user_id="user", item_id="sku", item_text="title", event_time="ts")
    with pytest.raises(SchemaValidationError, match=r"bad\.parquet[\s\S]*column 'title': missing column"):
        read_tables(str(tmp_path / "*.parquet"), schema)
    df.assign(ts=True).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(SchemaValidationError, match=r"bad\.parquet[\s\S]*column 'ts': wrong dtype"):
        read_tables(str(tmp_path / "*.parquet"), schema)
    with pytest.raises(DataFileError, match="no files match"):
        read_tables(str(tmp_path / "nothing-*.csv"), schema)
    # The job names a column outside the schema that the config asks for, with the file.
    config = _config(
        tmp_path,
        "transactions",
        [str(tmp_path / "good.parquet")],
        {"user_id": "user", "event_time": "ts", "item_id": "sku", "item_price": "price"},
        quantity_column="qty",
        cutoff="2024-03-01",
    )
    from tfrec.data.tables import load_data

    with pytest.raises(SchemaValidationError, match=r"good\.parquet[\s\S]*column 'qty': missing column"):
        load_data(config.data, valid_fraction=config.valid_fraction, test_fraction=config.test_fraction)


def test_config_data_section():
    config = JobConfig.from_dict({"data": {"source": "files", "paths": "x.csv", "shape": "search"}})
    assert config.data.paths == ["x.csv"] and config.data.resolved_split_by() == "query"
    assert JobConfig().data.source == "simulator"
    with pytest.raises(ValueError, match="'sheme'"):
        JobConfig.from_dict({"data": {"sheme": "s.yaml"}})
    with pytest.raises(ValueError, match="data.shape"):
        JobConfig.from_dict({"data": {"shape": "clicks"}})


# ----------------------------------------------------------------- splitting
def test_query_split_has_no_query_in_two_splits():
    df = search_table(sessions=400)
    schema = FeatureSchema.from_dict(SEARCH_SCHEMA)
    from tfrec.data.validation import validate

    data = S.prepare_search(validate(df, schema).valid, schema, valid_fraction=0.15, test_fraction=0.25)
    keys = [set(p[S.QUERY_KEY_COLUMN]) for p in (data.train, data.valid, data.test)]
    assert not (keys[0] & keys[1]) and not (keys[0] & keys[2]) and not (keys[1] & keys[2])
    assert sum(data.sizes().values()) == len(df)
    assert all(len(k) > 5 for k in keys)
    by_time = S.prepare_search(validate(df, schema).valid, schema, split_by="time", cutoff="2024-01-01 05:00")
    assert by_time.train["ts"].max() < by_time.valid["ts"].min()
    assert by_time.valid["ts"].max() < by_time.test["ts"].min()
    assert by_time.test["ts"].min() >= pd.Timestamp("2024-01-01 05:00")
    # "Red Boots" and "red  boots" are one query.
    assert S.query_key(pd.Series([" Red  Boots", "red boots"])).nunique() == 1


def test_interactions_time_split_and_history_do_not_leak():
    df = interactions_table(users=40, events=10)
    schema = FeatureSchema(
        user_id="user",
        user_categorical=["country"],
        item_id="sku",
        item_text="title",
        item_price="price",
        event_time="ts",
        history_length=5,
    )
    data = S.prepare_interactions(df, schema, valid_fraction=0.1, test_fraction=0.2, negatives_per_positive=2)
    assert data.train["ts"].max() < data.valid["ts"].min() <= data.valid["ts"].max() < data.test["ts"].min()
    pos = data.train[data.train["clicked"] == 1]
    assert len(pos) + (data.valid["clicked"] == 1).sum() + (data.test["clicked"] == 1).sum() == len(df)
    # History: only the same user's strictly earlier items, at most history_length.
    events = df.sort_values("ts", kind="stable")
    for _, row in pd.concat([data.train, data.test]).sample(60, random_state=0).iterrows():
        earlier = events[(events.user == row.user) & (events.ts < row.ts)].sku.tolist()
        assert list(row.recent_items) == earlier[-5:]
    windowed = S.add_history(df, schema, "h", window_days=7)
    for _, row in windowed.sample(40, random_state=1).iterrows():
        recent = events[
            (events.user == row.user) & (events.ts < row.ts) & (events.ts >= row.ts - pd.Timedelta(days=7))
        ].sku.tolist()
        assert list(row.h) == recent[-5:]
    # Negatives: the user side of a positive, another item, label 0.
    neg = data.test[data.test["clicked"] == 0]
    assert len(neg) > 0 and set(neg["sku"]) <= set(data.catalog["sku"])


def test_transactions_features_stop_at_the_cutoff():
    df = transactions_table(customers=120)
    schema = FeatureSchema(user_id="customer", event_time="when", user_categorical=["region"])
    data = S.prepare_transactions(df, schema, amount="amount", cutoff="2023-09-30", horizon_end="2023-12-31")
    cust = df.customer.iloc[0]
    rows = df[df.customer == cust]
    horizon = rows[(rows.when >= "2023-10-01") & (rows.when < "2024-01-01")].amount.sum()
    test_row = data.test[data.test.customer == cust].iloc[0]
    assert test_row.future_value == pytest.approx(max(horizon, 0.0))
    calib = rows[rows.when < "2023-10-01"].amount.sum()
    assert test_row.monetary == pytest.approx(max(calib, 0.0))
    # Training rows: features 92 days earlier, label in the window that ends at the cutoff.
    shift_stop = pd.Timestamp("2023-10-01") - pd.Timedelta(days=92)
    train = pd.concat([data.train, data.valid])
    row = train[train.customer == cust]
    if len(row):
        assert row.iloc[0].future_value == pytest.approx(
            max(rows[(rows.when >= shift_stop) & (rows.when < "2023-10-01")].amount.sum(), 0.0)
        )
        assert row.iloc[0].monetary == pytest.approx(max(rows[rows.when < shift_stop].amount.sum(), 0.0))
    assert data.info["horizon_days"] == 92
    with pytest.raises(S.ShapeError, match="needs data.cutoff"):
        S.prepare_transactions(df, schema, amount="amount", cutoff=None)
    with pytest.raises(S.ShapeError, match=r"needs the schema to map \['item_id'\]"):
        S.prepare_interactions(df, schema)


# ------------------------------------------------------------- end to end
def _export_runs(runs):
    """`tfrec export RUN_DIR` on files runs, served: every signature over gRPC and REST answers as the in-process model.

    `runs`: `{served name: (run_dir, model, expected signatures)}`, all served by one `LocalModelServer`
    (tests/served_check.py). Returns the manifests.
    """
    from served_check import check_served, local_server

    from tfrec.cli import main

    manifests, bases = {}, {}
    from tfrec.export.saved_model import signature_names

    for name, (run_dir, model, expected_signatures) in runs.items():
        assert main(["export", str(run_dir)]) == 0
        bases[name] = run_dir / "models" / "tfrec"
        manifests[name] = json.loads((bases[name] / "1" / "assets.extra" / "tfrec_manifest.json").read_text())
        # The shape's signatures, plus rank (with a CTR task) and query intent (with an intent task).
        signatures = manifests[name]["signatures"]
        assert signatures == signature_names(model) and set(expected_signatures) <= set(signatures)
        assert ("rank" in signatures) == ("ctr" in model.task_names) and "rows" in manifests[name]["metrics"]
    with local_server(bases) as endpoints:
        for name, (run_dir, model, _) in runs.items():
            examples = pd.read_parquet(run_dir / "examples.parquet").head(6)
            catalog = pd.read_parquet(run_dir / "catalog.parquet") if (run_dir / "catalog.parquet").exists() else None
            check_served(endpoints, name, model, examples, catalog)
    return manifests


def _export_run(run_dir, model, expected_signatures):
    """`_export_runs` of one run, served as `tfrec`; returns its manifest."""
    return _export_runs({"tfrec": (run_dir, model, expected_signatures)})["tfrec"]


def test_search_job_end_to_end(tmp_path):
    from tfrec.jobs.files import run

    df = search_table(sessions=600)
    df.to_csv(tmp_path / "search.csv", index=False)
    config = _example_config(tmp_path, "search_logs", [str(tmp_path / "search.csv")])
    config.training.epochs, config.training.learning_rate = 4, 0.005
    result = run(config)
    m = result["metrics"]["search"]
    test = pd.read_parquet(tmp_path / "run" / "test.parquet")
    train_keys = set(result["data"].train[S.QUERY_KEY_COLUMN])
    assert not set(test[S.QUERY_KEY_COLUMN]) & train_keys
    assert m["ctr"]["model"]["auc"] > 0.6 > m["ctr"]["popularity"]["auc"]  # query-item match, learnt from text
    assert m["query_ndcg"]["model"]["ndcg@5"] > m["query_ndcg"]["popularity"]["ndcg@5"]
    assert "logged_order" in m["query_ndcg"] and m["retrieval"]["queries"] > 10
    written = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert written["rows"]["rows_read"] == len(df)
    config = JobConfig.from_yaml(tmp_path / "run" / "config.yaml")
    assert config.data.schema["query_text"] == "search_query" and os.path.isabs(config.data.paths[0])
    if (tmp_path / "run" / "report.html").exists():  # where this version has the HTML report
        assert (tmp_path / "run" / "report.html").read_text().count("<img") >= 3  # CTR and retrieval figures
    # Clicks and an item category: the ranking stage and the query-intent signatures too.
    search = ["serving_default", "score", "encode_query", "encode_item", "retrieve", "rank", "rank_weighted"]
    _export_run(tmp_path / "run", result["model"], search + ["query_intent", "retrieve_by_intent"])


def test_graded_search_job_end_to_end(tmp_path):
    from tfrec.jobs.files import run

    df = search_table(sessions=400, graded=True)
    df.to_parquet(tmp_path / "judged.parquet")
    config = _example_config(
        tmp_path,
        "search_logs",
        [str(tmp_path / "judged.parquet")],
        schema="training/configs/schemas/search_judgements.yaml",
    )
    config.training.epochs, config.training.learning_rate = 4, 0.005
    result = run(config)
    m = result["metrics"]["search"]
    assert m["relevance"]["model"]["rmse"] < m["relevance"]["global_mean"]["rmse"]
    assert m["query_ndcg"]["model"]["ndcg@5"] > m["query_ndcg"]["item_mean"]["ndcg@5"]
    assert "ctr" not in m
    # No clicks: no CTR head, and the exported score answers relevance, not P(click).
    assert result["model"].task_names == ["retrieval", "relevance"]
    _export_run(
        tmp_path / "run", result["model"], ["serving_default", "score", "encode_query", "encode_item", "retrieve"]
    )


def test_realistic_search_job_starts_from_a_pretrained_encoder(tmp_path, online_retail_path, tiny_bert_preset):
    """realistic_search.yaml (a frozen pretrained encoder; a tiny saved BERT stands in for MiniLM) on real titles."""
    from tfrec.data.realistic_search import RealisticSearchConfig, generate_realistic_search
    from tfrec.jobs.files import run

    df = generate_realistic_search(RealisticSearchConfig(num_queries=90, seed=1), catalog_path=online_retail_path)
    df.to_parquet(tmp_path / "realistic.parquet")
    config = _example_config(tmp_path, "realistic_search", [str(tmp_path / "realistic.parquet")])
    config.model.text.preset, config.model.text.trainable = tiny_bert_preset, False
    assert config.training.monitor == "val_ndcg@10"
    result = run(config)
    history = result["metrics"]["history"]
    assert history["epoch"][0] == 0 and len(history["val_ndcg@10"]) == 3  # the untrained start, then 2 epochs
    model = result["model"]
    assert model.query_tower.text_share > 0 and model.text_encoder.cached_texts() is not None
    m = result["metrics"]["search"]
    assert {"bm25", "model"} <= set(m["query_ndcg"]) and m["query_ndcg"]["model"]["ndcg@5"] > 0.3
    assert any("on NDCG@5" in line for line in result["metrics"]["versus_baselines"]["lines"])  # K = the run's smallest


def test_interactions_job_end_to_end(tmp_path):
    from tfrec.jobs.files import run

    df = interactions_table(users=150, events=16)
    df.to_parquet(tmp_path / "events.parquet")
    config = _example_config(tmp_path, "interactions", [str(tmp_path / "events.parquet")])
    assert config.model.text.item_text == "bag_of_words"
    result = run(config)
    m = result["metrics"]["interactions"]
    r = m["retrieval"]
    assert r["queries"] > 100
    # Users buy within one category: history-as-query retrieval beats popularity.
    assert r["model"]["recall@5"] > 1.5 * r["popularity"]["recall@5"]
    assert m["ctr"]["model"]["auc"] > 0.6
    assert result["data"].schema.user_history == "recent_items"
    _export_run(
        tmp_path / "run", result["model"], ["serving_default", "score", "encode_user", "encode_item", "retrieve"]
    )


def test_transactions_job_end_to_end_and_evaluate_run(tmp_path):
    from tfrec.jobs.evaluate import evaluate_run
    from tfrec.jobs.files import run

    df = transactions_table(customers=400)
    df.to_csv(tmp_path / "tx.csv", index=False)
    config = _example_config(tmp_path, "transactions", [str(tmp_path / "tx.csv")])
    assert config.data.cutoff == "2023-09-30" and config.model.use_text is False
    config.training.epochs = 8
    result = run(config)
    v = result["metrics"]["value"]
    assert set(v) >= {"model", "calibration_scaled", "rfm"}
    # The purchase rate persists: every method ranks customers well above chance.
    for name in ("model", "calibration_scaled", "rfm"):
        assert v[name]["normalized_gini"] > 0.4, name
    assert v["model"]["normalized_gini"] > v["calibration_scaled"]["normalized_gini"] - 0.1
    assert result["metrics"]["rows"]["rows_read"] == len(df)
    assert result["data"].schema.user_id is None and result["model"].task_names == ["value"]
    # `tfrec evaluate` reloads the model and the data of the run and gets the same numbers.
    again = evaluate_run(str(tmp_path / "run"), output_dir=str(tmp_path / "eval"))
    for name in ("model", "rfm"):
        assert again["value"][name]["normalized_gini"] == pytest.approx(v[name]["normalized_gini"], abs=1e-6)
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["value"]["customers"] == v["customers"]
    manifest = _export_run(tmp_path / "run", result["model"], ["serving_default", "user_value"])
    assert manifest["catalog_size"] == 0 and manifest["retrieval_index"] is None
    if (tmp_path / "eval" / "report.html").exists():
        assert (tmp_path / "eval" / "report.html").read_text().count("<img") >= 2  # user value figures


def test_cli_train_and_evaluate_on_files(tmp_path, capsys):
    from tfrec.cli import main

    transactions_table(customers=300).to_csv(tmp_path / "tx.csv", index=False)
    config = _example_config(tmp_path, "transactions", ["unused.csv"])
    config.training.epochs = 3
    config.to_yaml(tmp_path / "job.yaml")
    code = main(
        [
            "train",
            "--config",
            str(tmp_path / "job.yaml"),
            "--data",
            str(tmp_path / "tx.csv"),
            "--schema",
            "training/configs/schemas/transactions.yaml",
            "--shape",
            "transactions",
            "--output-dir",
            str(tmp_path / "cli_run"),
        ]
    )
    assert code == 0
    trained = json.loads((tmp_path / "cli_run" / "metrics.json").read_text())
    assert trained["shape"] == "transactions" and trained["files"] == [str(tmp_path / "tx.csv")]
    assert main(["evaluate", "--run-dir", str(tmp_path / "cli_run"), "--output", str(tmp_path / "ev")]) == 0
    again = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert again["value"]["model"]["spearman"] == pytest.approx(trained["value"]["model"]["spearman"], abs=1e-6)
    assert "calibration_scaled" in capsys.readouterr().out
    # A mapping that does not fit the file: the error names the column and the file.
    pd.read_csv(tmp_path / "tx.csv").rename(columns={"when": "date"}).to_csv(tmp_path / "bad.csv", index=False)
    assert (
        main(
            [
                "train",
                "--config",
                str(tmp_path / "job.yaml"),
                "--data",
                str(tmp_path / "bad.csv"),
                "--output-dir",
                str(tmp_path / "bad_run"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "bad.csv" in err and "column 'when': missing column" in err


def test_online_retail_sample_value_and_interactions(tmp_path, online_retail_path):
    """A 4% customer sample of Online Retail as latin-1 CSV and as parquet, through both real-data configs."""
    from tfrec.jobs.files import run

    df = pd.read_parquet(online_retail_path)
    ids = df["CustomerID"].dropna().unique()
    keep = set(np.random.default_rng(0).choice(ids, size=len(ids) // 25, replace=False))
    sample = df[df["CustomerID"].isin(keep) | (df["CustomerID"].isna() & (np.arange(len(df)) % 200 == 0))]
    sample.to_csv(tmp_path / "retail.csv", index=False, encoding="latin-1")
    sample.to_parquet(tmp_path / "retail.parquet")

    value = _example_config(tmp_path, "online_retail_value", [str(tmp_path / "retail.csv")], csv_encoding="latin-1")
    value.training.epochs = 6
    value_run = run(value)
    m = value_run["metrics"]
    v = m["value"]
    assert m["rows"]["rows_read"] == len(sample)
    assert m["rows"]["rejected_by_reason"]["CustomerID: null in required field"] == sample["CustomerID"].isna().sum()
    assert v["customers"] > 80 and 0.2 < v["zero_share"] < 0.7
    # Past spend predicts future spend on real data: both baselines rank well above chance.
    assert v["calibration_scaled"]["normalized_gini"] > 0.4 and v["rfm"]["normalized_gini"] > 0.4
    assert np.isfinite(v["model"]["normalized_gini"])

    inter = _example_config(tmp_path / "i", "online_retail_interactions", [str(tmp_path / "retail.parquet")])
    inter_run = run(inter)
    m = inter_run["metrics"]
    r = m["interactions"]["retrieval"]
    assert m["split_info"]["test_start"] == "2011-09-01 00:00:00"
    assert r["queries"] > 200 and r["popularity"]["recall@20"] > 0
    assert m["rows"]["rejected_by_reason"]["Quantity: quantity <= 0 (a return, not an interaction)"] > 0
    # Both exports served side by side by one server.
    two_tower = ["serving_default", "score", "encode_user", "encode_item", "retrieve"]
    _export_runs(
        {
            "online_retail_value": (tmp_path / "run", value_run["model"], ["serving_default", "user_value"]),
            "online_retail_interactions": (tmp_path / "i" / "run", inter_run["model"], two_tower),
        }
    )
