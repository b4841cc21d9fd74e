"""Training input out of core: the streaming statistics pass, per-worker file shards, training from files."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tfrec.data.readers import DataFileError
from tfrec.data.simulator import SimulatorConfig, simulate
from tfrec.data.streaming_stats import Moments, TableStatistics, ValueCounts, collect_statistics
from tfrec.data.validation import SchemaValidationError, validate
from tfrec.models.config import ModelConfig, TextConfig

SMALL = dict(
    embedding_dim=8,
    id_embedding_dim=4,
    tower_units=[8],
    expert_units=[8],
    cross_layers=1,
    text=TextConfig(vocabulary_size=120, hidden_dim=8, num_layers=1, num_heads=2, query_sequence_length=6),
)


@pytest.fixture(scope="module")
def sim():
    return simulate(SimulatorConfig(num_users=300, num_items=200, num_sessions=300, seed=4))


@pytest.fixture(scope="module")
def log(sim, tmp_path_factory):
    """The impressions with a few bad rows in 4 parquet files of several row groups; and a unique key per row."""
    df = sim.impressions.copy()
    df["user_id"] = [f"r{i}" for i in range(len(df))]  # unique: rows can be told apart after the stream
    df.loc[0:2, "item_price"] = -1.0  # rejected
    df.loc[7, "query"] = " "  # rejected
    df.loc[5:40, "user_tenure_days"] = np.nan  # missing numerics: kept, left out of the moments
    folder = tmp_path_factory.mktemp("log")
    for i, part in enumerate(np.array_split(np.arange(len(df)), 4)):
        pq.write_table(
            pa.Table.from_pandas(df.iloc[part], preserve_index=False), folder / f"part-{i}.parquet", row_group_size=200
        )
    return df, folder


def _layers(model):
    """(a key, the layer) of every layer of the model, in the same order for models built alike."""
    layers = [model, *model._flatten_layers(include_self=False)]
    return [(f"{i}:{type(layer).__name__}", layer) for i, layer in enumerate(layers)]


def _vocabularies(model) -> dict:
    out = {}
    for key, layer in _layers(model):
        if isinstance(getattr(layer, "vocabulary", None), list):
            out[key] = list(layer.vocabulary)
        tokenizer = getattr(layer, "tokenizer", None)
        if tokenizer is not None and hasattr(tokenizer, "get_vocabulary"):
            out[key + "/wordpiece"] = list(tokenizer.get_vocabulary())
    return out


def _numerics(model) -> dict:
    from tfrec.layers.numeric_features import NumericFeatures

    return {
        key: (layer.mean, layer.std, layer.log_scale)
        for key, layer in _layers(model)
        if isinstance(layer, NumericFeatures)
    }


def test_moments_and_counts_combine_exactly():
    rng = np.random.default_rng(0)
    values = rng.lognormal(2.0, 1.5, 10_001)
    values[::7] = np.nan
    total = Moments()
    for part in np.array_split(values, 13):
        total = total.combine(Moments.of(part))
    assert total.count == int((~np.isnan(values)).sum())
    np.testing.assert_allclose([total.mean, total.std], [np.nanmean(values), np.nanstd(values)], rtol=1e-12)
    counts = ValueCounts()
    for chunk in (["a", "b", ""], ["a"], []):
        counts.add(chunk)
    assert counts.result().to_dict() == {"a": 2, "b": 1}


def test_statistics_of_the_stream_build_the_model_of_the_whole_table(sim, log):
    import keras

    from tfrec.models.builder import build_model

    df, folder = log
    schema = sim.schema()
    train_df = validate(df, schema).valid
    stats = collect_statistics(folder, schema, chunk_rows=150)
    assert stats.rows == len(train_df) == len(df) - 4
    assert stats.accounting.rows_read == len(df) and stats.accounting.files_read == 4
    assert sum(stats.file_rows.values()) == stats.rows and len(stats.file_rows) == 4
    # The raw numbers: moments as numpy's over the whole column.
    tenure = train_df["user_tenure_days"].to_numpy(float)
    got = stats.numeric_moments(["user_tenure_days"])["user_tenure_days"]
    np.testing.assert_allclose([got["mean"], got["std"]], [np.nanmean(tenure), np.nanstd(tenure)], rtol=1e-10)
    assert stats.vocabulary("item_id") == TableStatistics.from_frame(train_df, schema).vocabulary("item_id")

    config = ModelConfig(**SMALL)
    keras.utils.set_random_seed(0)
    whole = build_model(schema, config, train_df)
    keras.utils.set_random_seed(0)
    streamed = build_model(schema, config, statistics=stats)
    vocabularies = _vocabularies(whole)
    assert vocabularies == _vocabularies(streamed)
    # Ids, categories, history, WordPiece, titles and intents are all there.
    assert any("wordpiece" in k for k in vocabularies) and len(vocabularies) >= 8
    numerics = _numerics(whole)
    assert numerics.keys() == _numerics(streamed).keys() and numerics
    for path, (mean, std, log_scale) in _numerics(streamed).items():
        np.testing.assert_allclose(mean, numerics[path][0], rtol=1e-9, err_msg=path)
        np.testing.assert_allclose(std, numerics[path][1], rtol=1e-9, err_msg=path)
        assert log_scale == numerics[path][2]
    # Same sizes, same seed: the same initial weights, logQ probabilities and lexical IDF included.
    for model in (whole, streamed):
        keras.utils.set_random_seed(1)
        model.build()
    assert len(whole.weights) == len(streamed.weights)
    for a, b in zip(whole.weights, streamed.weights):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, err_msg=a.path)


def test_two_shards_are_disjoint_and_cover_every_row_once(sim, log):
    import tensorflow as tf

    from tfrec.data.pipeline import dataset_from_files, shard_files

    df, folder = log
    schema = sim.schema()
    valid_keys = validate(df, schema).valid["user_id"].tolist()
    seen = []
    for shard in (0, 1):
        ds = dataset_from_files(
            folder, schema, batch_size=64, shuffle_buffer=500, read_batch_rows=128, num_shards=2, shard_index=shard
        )
        seen.append([k.decode() for x, _ in ds for k in x["user_id"].numpy()])
    assert not set(seen[0]) & set(seen[1])
    assert sorted(seen[0] + seen[1]) == sorted(valid_keys)  # every valid row exactly once
    assert seen[0] != sorted(seen[0])  # shuffled
    # An InputContext (as distribute_datasets_from_function passes it): per-replica batches of its shard.
    context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2)
    ds = dataset_from_files(folder, schema, batch_size=64, drop_remainder=True, input_context=context)
    first = next(iter(ds))[0]["user_id"].numpy()
    assert len(first) == 32 and {k.decode() for k in first} <= set(seen[1])
    with pytest.raises(ValueError, match="4 file.* for 5 input shards"):
        shard_files(sorted(str(p) for p in folder.iterdir()), num_shards=5)


def test_a_few_steps_from_the_stream_train_the_model(sim, log, tmp_path):
    import keras

    from tfrec.jobs.config import JobConfig
    from tfrec.models.builder import build_model
    from tfrec.training import train_streaming

    _, folder = log
    schema = sim.schema()
    config = JobConfig.from_dict(
        {
            "model": {**SMALL, "text": {}, "use_text": False},
            "training": {"batch_size": 64, "verbose": 0, "tensorboard": False, "early_stopping_patience": 0},
        }
    )
    stats = collect_statistics(folder, schema)
    keras.utils.set_random_seed(config.training.seed)
    start = build_model(schema, config.model, statistics=stats)
    start.build()  # as train_streaming's first weights (the same seed, the same draws)
    model, history = train_streaming(
        config, schema, str(folder / "*.parquet"), statistics=stats, steps=4, valid_paths=folder, run_dir=tmp_path
    )
    row = history.rows[-1]
    assert row["optimizer_steps"] == 4 and np.isfinite(row["loss"]) and np.isfinite(row["val_loss"])
    moved = [not np.allclose(np.asarray(a), np.asarray(b)) for a, b in zip(start.weights, model.weights)]
    # The trainable weights moved; the rest (logQ probabilities, ...) did not: the same start.
    assert len(start.weights) == len(model.weights) and 0.5 < np.mean(moved) < 1
    assert (tmp_path / "model.keras").exists()


def test_a_bad_file_or_a_missing_column_names_the_file_and_the_column(sim, tmp_path):
    schema = sim.schema()
    sim.impressions.head(50).drop(columns=["item_brand"]).to_parquet(tmp_path / "no-brand.parquet")
    with pytest.raises(SchemaValidationError, match="item_brand") as err:
        collect_statistics(tmp_path / "no-brand.parquet", schema)
    assert "no-brand.parquet" in str(err.value)
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(DataFileError, match="broken.parquet"):
        collect_statistics(tmp_path / "broken.parquet", schema)
    csv = tmp_path / "no-query.csv"
    sim.impressions.head(20).drop(columns=["query", "user_history"]).to_csv(csv, index=False)
    with pytest.raises(SchemaValidationError, match="'query'.*missing column") as err:
        collect_statistics(csv, schema.restrict([c for c in schema.column_names() if c != "user_history"]))
    assert "no-query.csv" in str(err.value)


def test_csv_chunks_give_the_statistics_of_the_table(sim, tmp_path):
    schema = sim.schema()
    schema = schema.restrict([c for c in schema.column_names() if c != "user_history"])  # lists do not fit CSV
    df = sim.impressions.drop(columns=["user_history"])
    for i, part in enumerate(np.array_split(np.arange(len(df)), 2)):
        df.iloc[part].to_csv(tmp_path / f"part-{i}.csv", index=False)
    stats = collect_statistics(tmp_path, schema, chunk_rows=333)
    table = pd.concat([pd.read_csv(tmp_path / f"part-{i}.csv", dtype=str) for i in range(2)], ignore_index=True)
    whole = TableStatistics.from_frame(validate(table, schema).valid, schema)
    assert stats.rows == whole.rows
    for column in ("user_id", "item_id", "item_brand"):
        assert stats.vocabulary(column) == whole.vocabulary(column)
    assert stats.texts["query"] == whole.texts["query"]
    np.testing.assert_allclose(
        stats.numeric_moments(["item_price"])["item_price"]["log_mean"],
        whole.numeric_moments(["item_price"])["item_price"]["log_mean"],
        rtol=1e-10,
    )
