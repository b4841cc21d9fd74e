import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tfrec.data.pipeline import (
    RowAccounting,
    dataset_from_dataframe,
    dataset_from_parquet,
)
from tfrec.data.simulator import SimulatorConfig, simulate
from tfrec.data.validation import SchemaValidationError


@pytest.fixture(scope="module")
def sim():
    return simulate(SimulatorConfig(num_users=300, num_items=200, num_sessions=400, seed=5))


def with_bad_rows(df):
    df = df.copy()
    df.loc[0:4, "item_price"] = -1.0  # 5 rows
    df.loc[10:12, "query"] = " "  # 3 rows
    df.loc[20, "click"] = 3  # 1 row
    return df


def collect(ds):
    feats, labels = [], []
    for f, l in ds:
        feats.append({k: v.numpy() for k, v in f.items()})
        labels.append({k: v.numpy() for k, v in l.items()})
    return feats, labels


def test_dataframe_pipeline_accounts_for_every_row(sim):
    df = with_bad_rows(sim.impressions)
    acc = RowAccounting()
    ds = dataset_from_dataframe(df, sim.schema(), batch_size=64, seed=1, accounting=acc)
    feats, labels = collect(ds)
    n_out = sum(len(f["item_id"]) for f in feats)
    assert acc.rows_read == len(df) == 4000
    assert acc.rows_rejected == 9 and n_out == acc.rows_used == 4000 - 9
    assert acc.rejected == {"item_price: negative value": 5, "query: empty text": 3, "click: label out of range": 1}
    f = feats[0]
    assert f["user_history"].shape[1] == sim.schema().history_length
    assert f["item_price"].dtype == np.float32 and f["query"].dtype == object
    assert set(labels[0]) == {"click", "value", "relevance"}


def test_history_is_left_padded_and_keeps_most_recent():
    import tensorflow as tf

    from tfrec.data.pipeline import fit_history, pad_history

    out = pad_history([["a", "b", "c"], [], None], 2)
    assert out.tolist() == [["b", "c"], ["", ""], ["", ""]]
    # Without a length: as wide as the longest list; NaN is no history; ids become strings.
    assert pad_history([[1, 2], float("nan"), ["x"]]).tolist() == [["1", "2"], ["", ""], ["", "x"]]
    assert pad_history([[], None]).tolist() == [[""], [""]]
    # The graph version cuts and pads a request's history the same way.
    from tfrec.schema import FeatureSchema

    schema = FeatureSchema(user_history="h", history_length=2)
    fitted = fit_history({"h": tf.constant([["a", "b", "c"], ["", "", "d"]])}, schema)["h"]
    assert fitted.numpy().astype(str).tolist() == [["b", "c"], ["", "d"]]
    short = fit_history({"h": tf.constant([["x"]])}, schema)["h"]
    assert short.numpy().astype(str).tolist() == [["", "x"]]


def test_parquet_folders_and_globs_expand_to_parquet_files(tmp_path):
    from tfrec.data.pipeline import expand_paths

    (tmp_path / "b.parquet").write_bytes(b"")
    (tmp_path / "a.parquet").write_bytes(b"")
    (tmp_path / "notes.csv").write_text("x")
    assert expand_paths(tmp_path) == [str(tmp_path / "a.parquet"), str(tmp_path / "b.parquet")]
    assert expand_paths([str(tmp_path / "b.*")]) == [str(tmp_path / "b.parquet")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no data files"):
        expand_paths(tmp_path / "empty")


def test_seeded_shuffle_is_reproducible(sim):
    schema = sim.schema()
    ids = []
    for seed in (3, 3, 4):
        ds = dataset_from_dataframe(sim.impressions, schema, batch_size=500, seed=seed)
        ids.append(next(iter(ds))[0]["item_id"].numpy().tolist())
    assert ids[0] == ids[1] != ids[2]


def test_parquet_streaming_matches_dataframe(sim, tmp_path):
    df = with_bad_rows(sim.impressions)
    # Two files, several row groups each: streamed one record batch at a time.
    for i, part in enumerate((df.iloc[:2500], df.iloc[2500:])):
        pq.write_table(
            pa.Table.from_pandas(part, preserve_index=False), tmp_path / f"part-{i}.parquet", row_group_size=300
        )
    acc = RowAccounting()
    ds = dataset_from_parquet(
        str(tmp_path / "*.parquet"), sim.schema(), batch_size=128, shuffle=False, read_batch_rows=300, accounting=acc
    )
    feats, labels = collect(ds)
    got_items = np.concatenate([f["item_id"] for f in feats]).astype(str)
    got_clicks = np.concatenate([l["click"] for l in labels])
    good = df.drop(index=list(range(5)) + [10, 11, 12, 20])
    assert got_items.tolist() == good.item_id.tolist()
    np.testing.assert_array_equal(got_clicks, good.click.to_numpy(np.float32))
    assert acc.rows_read == 4000 and acc.rows_used == 3991
    assert acc.rejected["item_price: negative value"] == 5
    hist = np.concatenate([f["user_history"] for f in feats])
    first = list(good.user_history.iloc[0])[-sim.schema().history_length :]
    assert [h.decode() for h in hist[0] if h] == first


def test_parquet_missing_column_names_file_and_column(sim, tmp_path):
    path = tmp_path / "events.parquet"
    sim.impressions.drop(columns=["item_title"]).to_parquet(path)
    ds = dataset_from_parquet(str(path), sim.schema(), batch_size=8)
    with pytest.raises(Exception) as err:
        next(iter(ds))
    assert "item_title" in str(err.value) and "events.parquet" in str(err.value)


def test_parquet_no_files_is_a_clear_error(tmp_path, sim):
    with pytest.raises(FileNotFoundError, match="no files match"):
        dataset_from_parquet(str(tmp_path / "*.parquet"), sim.schema())


def test_dataframe_missing_column_raises(sim):
    with pytest.raises(SchemaValidationError, match="item_brand"):
        dataset_from_dataframe(sim.impressions.drop(columns=["item_brand"]), sim.schema())
