"""`tfrec predict`: batch scoring of files with a run directory or its export, chunked, with rejected rows kept."""

import shutil

import numpy as np
import pandas as pd
import pytest

from tests.test_tables import _example_config, search_table, transactions_table
from tfrec.cli import main
from tfrec.data import shapes as S
from tfrec.data.validation import SchemaValidationError
from tfrec.jobs.predict import PredictError, StreamingCustomerFeatures, predict
from tfrec.schema import FeatureSchema

SCORE_COLUMNS = ["ctr", "score"]


@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    """A search run trained 1 epoch on ~1,000 logged results, and its export: (run_dir, model, version_dir)."""
    from tfrec.jobs.files import run

    tmp = tmp_path_factory.mktemp("search")
    search_table(sessions=130).to_csv(tmp / "train.csv", index=False)
    config = _example_config(tmp, "search_logs", [str(tmp / "train.csv")])
    config.training.epochs = 1
    result = run(config)
    run_dir = tmp / "run"
    assert main(["export", str(run_dir), "--max-k", "20"]) == 0
    return run_dir, result["model"], run_dir / "models" / "tfrec" / "1"


@pytest.fixture(scope="module")
def tx_run(tmp_path_factory):
    """A transactions run (2 epochs, 150 customers) and its export: (run_dir, result, lines, version_dir)."""
    from tfrec.jobs.files import run

    tmp = tmp_path_factory.mktemp("tx")
    lines = transactions_table(customers=150)
    lines.to_csv(tmp / "tx.csv", index=False)
    config = _example_config(tmp, "transactions", [str(tmp / "tx.csv")])
    config.training.epochs = 2
    result = run(config)
    run_dir = tmp / "run"
    assert main(["export", str(run_dir)]) == 0
    return run_dir, result, lines, run_dir / "models" / "tfrec" / "1"


def _scoring_rows(seed=1, sessions=25):
    return search_table(seed=seed, sessions=sessions)


def _with_bad_rows(rows):
    """`rows` (as text) with a missing id, a non-numeric price, a negative price and an empty query."""
    bad = rows.astype({"price": object}).copy()
    bad.loc[3, "sku"] = None
    bad.loc[5, "price"] = "abc"
    bad.loc[8, "price"] = -4.0
    bad.loc[11, "search_query"] = "   "
    return bad


def _in_process(model, rows):
    from tfrec.models.inference import predict_dataframe

    # Served semantics: scored as at position 1 (the logged slot is not read).
    return predict_dataframe(model, rows.drop(columns=["slot"]))


def test_run_dir_and_export_equal_in_process_predictions(search_run, tmp_path):
    run_dir, model, version = search_run
    rows = _scoring_rows()
    rows.to_parquet(tmp_path / "rows.parquet")
    summary = predict(str(run_dir), [str(tmp_path / "rows.parquet")], str(tmp_path / "out.parquet"), progress=False)
    assert summary.rows_read == summary.rows_used == len(rows) and summary.rows_rejected == 0
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == ["search_query", "sku", "row", "file", *SCORE_COLUMNS]  # clicks only: no relevance
    assert out["row"].tolist() == list(range(len(rows))) and out["sku"].tolist() == rows["sku"].tolist()
    expected = _in_process(model, rows)
    for key in SCORE_COLUMNS:
        np.testing.assert_allclose(out[key].to_numpy(), expected[key], atol=1e-6, err_msg=key)
    # The export answers the same, from its version folder and from the model folder (its newest version).
    for path in (version, version.parent):
        predict(str(path), [str(tmp_path / "rows.parquet")], str(tmp_path / "export.parquet"), progress=False)
        exported = pd.read_parquet(tmp_path / "export.parquet")
        assert exported[["search_query", "sku", "row"]].equals(out[["search_query", "sku", "row"]])
        for key in SCORE_COLUMNS:
            assert np.abs(exported[key].to_numpy() - out[key].to_numpy()).max() < 1e-5, key


def test_chunks_and_several_csv_and_parquet_files_give_the_one_chunk_output(search_run, tmp_path):
    run_dir, _, _ = search_run
    rows = _with_bad_rows(_scoring_rows(seed=2, sessions=12))
    rows.to_csv(tmp_path / "all.csv", index=False)
    whole = predict(str(run_dir), [str(tmp_path / "all.csv")], str(tmp_path / "one.parquet"), progress=False)
    # The same rows as a CSV file then a parquet file, read 7 rows at a time, scored 3 at a time.
    rows.iloc[:50].to_csv(tmp_path / "a.csv", index=False)
    rows.iloc[50:].astype({"price": str}).to_parquet(tmp_path / "b.parquet")
    parts = [str(tmp_path / "a.csv"), str(tmp_path / "b.parquet")]
    chunked = predict(
        str(run_dir), parts, str(tmp_path / "chunked.parquet"), chunk_rows=7, batch_size=3, progress=False
    )
    assert (chunked.rows_read, chunked.rows_used, chunked.rejected) == (
        whole.rows_read,
        whole.rows_used,
        whole.rejected,
    )
    one, many = pd.read_parquet(tmp_path / "one.parquet"), pd.read_parquet(tmp_path / "chunked.parquet")
    assert set(many["file"]) == set(parts) and (many["row"] >= 50).eq(many["file"] == parts[1]).all()
    pd.testing.assert_frame_equal(one.drop(columns="file"), many.drop(columns="file"), atol=1e-6)
    rejected = [pd.read_parquet(tmp_path / f"{name}.rejected.parquet") for name in ("one", "chunked")]
    pd.testing.assert_frame_equal(rejected[0].drop(columns="file"), rejected[1].drop(columns="file"))


def test_bad_rows_are_rejected_with_reasons_and_the_good_rows_still_scored(search_run, tmp_path):
    run_dir, model, _ = search_run
    clean = _scoring_rows(seed=3, sessions=10)
    rows = _with_bad_rows(clean)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    # One row per chunk: a chunk whose only price is "abc" rejects its row; it is not a schema error.
    summary = predict(
        str(run_dir), [str(tmp_path / "rows.csv")], str(tmp_path / "out.parquet"), chunk_rows=1, progress=False
    )
    assert summary.rows_read == len(rows) == summary.rows_used + summary.rows_rejected
    assert summary.rejected == {
        "sku: null in required field": 1,
        "price: wrong dtype": 1,
        "price: negative value": 1,
        "search_query: empty text": 1,
    }
    bad = pd.read_parquet(tmp_path / "out.rejected.parquet")
    assert bad["row"].tolist() == [3, 5, 8, 11] and bad.loc[1, "price"] == "abc"
    assert bad["reason"].tolist() == [
        "sku: null in required field",
        "price: wrong dtype",
        "price: negative value",
        "search_query: empty text",
    ]
    out = pd.read_parquet(tmp_path / "out.parquet")
    good = clean.drop(index=[3, 5, 8, 11])
    assert out["row"].tolist() == good.index.tolist()
    expected = _in_process(model, good)
    np.testing.assert_allclose(out["ctr"].to_numpy(), expected["ctr"], atol=1e-6)
    assert "rejected          1  price: wrong dtype" in summary.text() and "rows/s" in summary.text()
    # A price column of which no value parses cannot hold its role: a schema error naming file and column.
    clean.assign(price="unknown").to_csv(tmp_path / "no_prices.csv", index=False)
    with pytest.raises(SchemaValidationError, match=r"no_prices\.csv[\s\S]*column 'price': wrong dtype"):
        predict(str(run_dir), [str(tmp_path / "no_prices.csv")], str(tmp_path / "x.parquet"), chunk_rows=4)
    assert not (tmp_path / "x.parquet").exists()  # nothing half-written


def test_encode_and_retrieve_signatures_from_the_run_and_the_export(search_run, tmp_path):
    from tfrec.models.inference import encode_items, encode_queries

    run_dir, model, version = search_run
    rows = _scoring_rows(seed=4, sessions=6)
    # encode_item reads only item columns: a file without queries is fine.
    rows.drop(columns=["search_query", "clicked"]).to_parquet(tmp_path / "items.parquet")
    predict(
        str(run_dir),
        [str(tmp_path / "items.parquet")],
        str(tmp_path / "items_out.parquet"),
        signature="encode_item",
        progress=False,
    )
    items = pd.read_parquet(tmp_path / "items_out.parquet")
    assert list(items.columns) == ["sku", "row", "file", "item_embedding"]
    np.testing.assert_allclose(np.stack(items["item_embedding"]), encode_items(model, rows), atol=1e-6)
    rows.to_parquet(tmp_path / "rows.parquet")
    predict(
        str(version),
        [str(tmp_path / "rows.parquet")],
        str(tmp_path / "q.parquet"),
        signature="encode_query",
        progress=False,
    )
    queries = np.stack(pd.read_parquet(tmp_path / "q.parquet")["query_embedding"])
    assert np.abs(queries - encode_queries(model, rows)).max() < 1e-5
    got = {}
    for name, path in (("run", run_dir), ("export", version)):
        predict(
            str(path),
            [str(tmp_path / "rows.parquet")],
            str(tmp_path / f"{name}.parquet"),
            signature="retrieve",
            k=5,
            progress=False,
        )
        got[name] = pd.read_parquet(tmp_path / f"{name}.parquet")
    ids = [np.stack(got[name]["item_ids"]) for name in ("run", "export")]
    scores = [np.stack(got[name]["scores"]) for name in ("run", "export")]
    assert ids[0].shape == (len(rows), 5) and (ids[0] == ids[1]).mean() > 0.99
    assert np.abs(scores[0] - scores[1]).max() < 1e-5
    catalog = pd.read_parquet(run_dir / "catalog.parquet")
    brute = encode_queries(model, rows) @ encode_items(model, catalog).T
    np.testing.assert_allclose(scores[0], -np.sort(-brute, axis=1)[:, :5], atol=1e-5)
    with pytest.raises(PredictError, match=r"no signature 'user_value'; it has serving_default, score"):
        predict(str(run_dir), [str(tmp_path / "rows.parquet")], str(tmp_path / "v.parquet"), signature="user_value")


def test_cli_exit_codes_and_messages(search_run, tmp_path, capsys):
    run_dir, _, version = search_run
    rows = _scoring_rows(seed=5, sessions=4)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    out = str(tmp_path / "out.parquet")
    assert (
        main(["predict", str(run_dir), "--data", str(tmp_path / "rows.csv"), "--output", out, "--chunk-rows", "10"])
        == 0
    )
    captured = capsys.readouterr()
    assert f"rows read {len(rows)}, scored {len(rows)}, rejected 0" in captured.out and "rows/s" in captured.out
    assert captured.err.count("predict: rows.csv chunk") == -(-len(rows) // 10)  # a progress line per chunk
    assert len(pd.read_parquet(out)) == len(rows)

    def fails(*argv):
        assert main(["predict", *argv]) == 2
        return capsys.readouterr().err

    data = ["--data", str(tmp_path / "rows.csv"), "--output", out]
    assert "model not found" in fails(str(tmp_path / "nowhere"), *data)
    assert "no signature 'user_value'" in fails(str(version), *data, "--signature", "user_value")
    rows.drop(columns=["title"]).to_csv(tmp_path / "no_title.csv", index=False)
    err = fails(str(run_dir), "--data", str(tmp_path / "no_title.csv"), "--output", out)
    assert "no_title.csv" in err and "column 'title': missing column" in err
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    err = fails(str(run_dir), "--data", str(tmp_path / "junk.parquet"), "--output", out)
    assert "cannot read" in err and "junk.parquet" in err
    assert "data file not found" in fails(str(run_dir), "--data", str(tmp_path / "gone.csv"), "--output", out)
    partial = tmp_path / "partial_run"
    partial.mkdir()
    shutil.copy(run_dir / "config.yaml", partial / "config.yaml")
    assert "has no model.keras" in fails(str(partial), *data)
    (partial / "config.yaml").unlink()
    assert "neither a run directory" in fails(str(partial), *data)
    with pytest.raises(SystemExit) as exit_info:  # argparse: --output is required
        main(["predict", str(run_dir), "--data", str(tmp_path / "rows.csv")])
    assert exit_info.value.code == 2


def test_transactions_per_customer_value_equals_the_job(tx_run, tmp_path):
    from tfrec.models.inference import predict_user_value

    run_dir, result, lines, version = tx_run
    test = result["data"].test
    expected = pd.Series(predict_user_value(result["model"], test)["user_value"], index=test["customer"].astype(str))
    # The training lines in two files (CSV, parquet) with two bad lines, read 97 lines at a time.
    bad = pd.DataFrame(
        {
            "customer": [None, 7],
            "when": ["2023-03-01 10:00", "2023-03-02"],
            "amount": ["5", "x"],
            "region": ["north", "south"],
        }
    )
    half = len(lines) // 2
    pd.concat([lines.iloc[:half].astype(str), bad]).to_csv(tmp_path / "a.csv", index=False)
    lines.iloc[half:].to_parquet(tmp_path / "b.parquet")
    files = [str(tmp_path / "a.csv"), str(tmp_path / "b.parquet")]
    import shutil

    moved = tmp_path / "elsewhere" / "7"  # an export copied away from its run: the manifest holds the run's config
    shutil.copytree(version, moved)
    for path in (run_dir, version, moved):  # every one computes the same features from the lines
        summary = predict(str(path), files, str(tmp_path / "value.parquet"), chunk_rows=97, progress=False)
        assert summary.rows_read == len(lines) + 2 == summary.rows_used + summary.rows_rejected
        assert summary.rejected == {"customer: null in required field": 1, "amount: wrong dtype": 1}
        out = pd.read_parquet(tmp_path / "value.parquet").set_index("customer")
        assert summary.customers == len(out) == len(test) and set(out.index) == set(expected.index)
        assert np.abs(out["user_value"].to_numpy() - expected[out.index].to_numpy()).max() < 1e-5
        features = test.assign(customer=test["customer"].astype(str)).set_index("customer").loc[out.index]
        np.testing.assert_allclose(out["monetary"], features["monetary"], rtol=1e-9)
    # An earlier as-of date: only customers who bought before it, fewer purchase days.
    summary = predict(str(run_dir), files, str(tmp_path / "june.parquet"), as_of="2023-06-30", progress=False)
    june = pd.read_parquet(tmp_path / "june.parquet").set_index("customer")
    buyers = lines[(lines.when < "2023-07-01") & (lines.amount > 0)].customer.astype(str).unique()
    assert set(june.index) == set(buyers) and summary.as_of == "2023-06-30"
    assert (june["frequency"] <= out.loc[june.index, "frequency"]).all()
    with pytest.raises(PredictError, match="not a date"):
        predict(str(run_dir), files, str(tmp_path / "x.parquet"), as_of="someday")
    # Lines without an amount column: the error names the file and the column.
    lines.drop(columns=["amount"]).to_csv(tmp_path / "no_amount.csv", index=False)
    with pytest.raises(SchemaValidationError, match=r"no_amount\.csv[\s\S]*column 'amount': missing column"):
        predict(str(run_dir), [str(tmp_path / "no_amount.csv")], str(tmp_path / "x.parquet"))


@pytest.mark.parametrize("chunk", [1, 13, 10_000])
def test_streaming_customer_features_equal_customer_features(chunk):
    """Per-customer aggregates over chunks give `customer_features` of all lines (items, numerics, categories)."""
    rng = np.random.default_rng(chunk)
    n = 400
    lines = pd.DataFrame(
        {
            "customer": rng.integers(0, 40, n).astype(str),
            "when": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 200 * 24, n) // 3 * 3, unit="h"),
            "amount": rng.normal(20, 15, n).round(2),
            "region": rng.choice(["north", "south", "east", ""], n),
            "age": np.where(rng.random(n) < 0.3, np.nan, rng.integers(18, 80, n).astype(float)),
            "sku": rng.integers(0, 25, n).astype(str),
        }
    )
    schema = FeatureSchema(
        user_id="customer",
        event_time="when",
        user_categorical=["region"],
        user_numeric=["age"],
        item_id="sku",
        history_length=4,
    )
    end = pd.Timestamp("2023-05-01")
    agg = StreamingCustomerFeatures(schema, "amount", end, compact_every=3)
    for i in range(0, n, chunk):
        agg.add(lines.iloc[i : i + chunk])
    got = agg.result()
    want = S.customer_features(lines, schema, "amount", end, lines["when"].min())
    assert agg.lines_before == int((lines.when < end).sum())
    pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False, atol=1e-9)


def test_interactions_run_scores_rows_with_their_history_list(tmp_path):
    """The model reads each event's history (a list column): its test.parquet scores as in process."""
    from tests.test_tables import interactions_table
    from tfrec.jobs.files import run
    from tfrec.models.inference import predict_dataframe

    interactions_table(users=50, events=8).to_parquet(tmp_path / "events.parquet")
    config = _example_config(tmp_path, "interactions", [str(tmp_path / "events.parquet")])
    config.training.epochs = 1
    model = run(config)["model"]
    test = tmp_path / "run" / "test.parquet"
    predict(str(tmp_path / "run"), [str(test)], str(tmp_path / "out.parquet"), chunk_rows=30, progress=False)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert list(out.columns) == ["user", "sku", "row", "file", "ctr", "score"]
    np.testing.assert_allclose(out["ctr"], predict_dataframe(model, pd.read_parquet(test))["ctr"], atol=1e-6)
    # A CSV cannot hold the list: the error names the column and where it comes from.
    pd.read_parquet(test).drop(columns=["recent_items"]).to_csv(tmp_path / "events.csv", index=False)
    with pytest.raises(SchemaValidationError, match=r"events\.csv[\s\S]*'recent_items': missing[\s\S]*add_history"):
        predict(str(tmp_path / "run"), [str(tmp_path / "events.csv")], str(tmp_path / "x.parquet"))
