import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_text  # noqa: F401  (loads the TF Text ops for the SavedModel)

from tfrec.export import export_model
from tfrec.export.ops import disallowed_ops, saved_model_ops
from tfrec.export.saved_model import MANIFEST_FILE, WARMUP_FILE, example_inputs
from tfrec.models.inference import encode_items, encode_queries, predict_dataframe, predict_user_value


@pytest.fixture(scope="module")
def trained(small_trained):
    return small_trained


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    sim, df, model = trained
    base = tmp_path_factory.mktemp("models")
    result = export_model(
        model, str(base), catalog=sim.items, examples=df.head(8), max_k=20, metrics={"auc": 0.5}, verbose=False
    )
    return result, tf.saved_model.load(result.path)


def call(loaded, name, inputs):
    fn = loaded.signatures[name]
    return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def test_signature_parity_on_1000_rows(trained, exported):
    sim, df, model = trained
    _, loaded = exported
    rows = df.sample(1000, random_state=0)
    inputs = example_inputs(model, rows, k=10)
    expected = predict_dataframe(model, rows.drop(columns=["position"]))
    for name in ("score", "serving_default"):
        got = call(loaded, name, inputs[name])
        assert set(got) == {"ctr", "score", "relevance", "user_value", "value_probability"}
        for key, value in got.items():
            np.testing.assert_allclose(value, expected[key], atol=1e-5, rtol=1e-5, err_msg=f"{name}/{key}")
    np.testing.assert_allclose(
        call(loaded, "encode_query", inputs["encode_query"])["query_embedding"], encode_queries(model, rows), atol=1e-5
    )
    np.testing.assert_allclose(
        call(loaded, "encode_item", inputs["encode_item"])["item_embedding"], encode_items(model, rows), atol=1e-5
    )
    value = predict_user_value(model, rows)
    got = call(loaded, "user_value", inputs["user_value"])
    np.testing.assert_allclose(got["user_value"], value["user_value"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got["value_probability"], value["value_probability"], atol=1e-5)
    # retrieve: brute force over the catalog, the same as numpy over the embeddings.
    got = call(loaded, "retrieve", inputs["retrieve"])
    scores = encode_queries(model, rows) @ encode_items(model, sim.items).T
    top = np.argsort(-scores, axis=1)[:, :10]
    np.testing.assert_allclose(got["scores"], np.take_along_axis(scores, top, 1), atol=1e-5)
    agree = (got["item_ids"].astype(str) == sim.items.item_id.to_numpy()[top]).mean()
    assert agree > 0.999  # only exact score ties may swap


def test_retrieve_k_and_exclusions(trained, exported):
    sim, df, model = trained
    _, loaded = exported
    rows = df.head(3)
    inputs = example_inputs(model, rows, k=5)
    first = call(loaded, "retrieve", inputs["retrieve"])
    assert first["item_ids"].shape == (3, 5)
    excluded = dict(inputs["retrieve"])
    excluded["exclude_item_ids"] = np.array(
        [[first["item_ids"][i, 0].decode(), "not-an-item"] for i in range(3)], dtype=object
    )
    excluded["k"] = np.array([5, 2, 30], np.int32)  # 30 > max_k = 20
    second = call(loaded, "retrieve", excluded)
    assert second["item_ids"].shape == (3, 20)
    for i in range(3):
        assert first["item_ids"][i, 0] not in second["item_ids"][i]
        assert second["item_ids"][i, 0] == first["item_ids"][i, 1]
    assert (second["item_ids"][1, 2:] == b"").all() and np.isneginf(second["scores"][1, 2:]).all()
    assert (second["item_ids"][2] != b"").all()


def test_only_ops_stock_tf_serving_has(exported):
    result, _ = exported
    ops = saved_model_ops(result.path)
    assert {"FastWordpieceTokenizeWithOffsets", "CaseFoldUTF8"} <= ops  # in-graph tokenisation
    assert not any("RoundRobinTrim" in op for op in ops)
    assert disallowed_ops(result.path) == []


def test_op_check_catches_foreign_ops(tmp_path):
    import keras_hub

    tok = keras_hub.tokenizers.WordPieceTokenizer(vocabulary=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "b"])
    packer = keras_hub.layers.MultiSegmentPacker(sequence_length=4, start_value=2, end_value=3)

    class M(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def f(self, x):
            ids, _ = packer((tok(x), tok(x)))  # default round-robin truncation
            return ids

    m = M()
    tf.saved_model.save(m, str(tmp_path / "rr"), signatures={"f": m.f})
    assert "TFText>RoundRobinTrim" in disallowed_ops(str(tmp_path / "rr"))


def test_saved_model_cli_lists_signatures(exported):
    result, _ = exported
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    out = subprocess.run(
        [cli, "show", "--dir", result.path, "--all"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("serving_default", "score", "encode_query", "encode_item", "retrieve", "user_value", "query_intent"):
        assert f"signature_def['{name}']" in out
    for needle in (
        "inputs['query'] tensor_info:",
        "inputs['item_price'] tensor_info:",
        "inputs['exclude_item_ids'] tensor_info:",
        "outputs['item_ids'] tensor_info:",
        "outputs['query_embedding'] tensor_info:",
        "outputs['ctr'] tensor_info:",
    ):
        assert needle in out, needle
    block = out.split("signature_def['retrieve']")[1].split("signature_def[")[0]
    assert "inputs['k'] tensor_info:\n        dtype: DT_INT32" in block
    assert "outputs['item_ids'] tensor_info:\n        dtype: DT_STRING" in block


def test_assets_extra_warmup_and_manifest(trained, exported):
    from tensorflow_serving.apis import prediction_log_pb2

    from tfrec.export.saved_model import signature_names

    result, _ = exported
    extra = os.path.join(result.path, "assets.extra")
    manifest = json.load(open(os.path.join(extra, MANIFEST_FILE)))
    assert manifest["metrics"] == {"auc": 0.5} and manifest["schema"]["item_id"] == "item_id"
    assert manifest["packages"]["tensorflow"].startswith("2.21")
    names = []
    for record in tf.data.TFRecordDataset(os.path.join(extra, WARMUP_FILE)):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        names.append(log.predict_log.request.model_spec.signature_name)
        assert log.predict_log.request.inputs
    assert {"serving_default", "score", "encode_query", "encode_item", "retrieve", "user_value"} <= set(names)
    assert {"query_intent", "retrieve_by_intent"} <= set(names) == set(signature_names(trained[2]))  # one each


@pytest.fixture(scope="module")
def published(trained, tmp_path_factory):
    """Two exports into one base with keep_versions=1, watched by a poller for incomplete versions.

    The first is brute force with item-only warm-up (no examples); the second is the partitioned
    index that `test_partitioned_retrieve_export_recall_and_ops` checks (one export serves both tests).
    Returns (base, the versions the poller saw incomplete, the second export's result).
    """
    sim, df, model = trained
    base = tmp_path_factory.mktemp("published")
    seen_incomplete = []
    stop = threading.Event()

    def poll():
        model_dir = base / "tfrec"
        while not stop.is_set():
            if model_dir.exists():
                for d in os.listdir(model_dir):
                    if d.isdigit():
                        path = model_dir / d
                        complete = (
                            (path / "saved_model.pb").exists()
                            and (path / "variables" / "variables.index").exists()
                            and (path / "assets.extra" / MANIFEST_FILE).exists()
                        )
                        if not complete and path.exists():
                            seen_incomplete.append(d)
            time.sleep(0.001)

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        export_model(model, str(base), catalog=sim.items, keep_versions=1, verbose=False)
        partitioned = export_model(
            model,
            str(base),
            catalog=sim.items,
            keep_versions=1,
            examples=df.head(4),
            max_k=20,
            verbose=False,
            retrieval_index="partitioned",
            index_options={"clusters": 12, "probe": 4},
        )
    finally:
        stop.set()
        reader.join()
    return base, seen_incomplete, partitioned


def test_atomic_publish_and_pruning(trained, published):
    sim, df, model = trained
    base, seen_incomplete, _ = published
    assert seen_incomplete == []
    assert sorted(os.listdir(base / "tfrec")) == ["2"]  # pruned to the newest, no staging left
    with pytest.raises(FileExistsError, match="version 2 already exists"):
        export_model(model, str(base), catalog=sim.items, version=2, verbose=False)
    with pytest.raises(ValueError, match="duplicate ids"):
        export_model(model, str(base), catalog=sim.items.iloc[[0, 0]], verbose=False)


def test_partitioned_index_probing_every_cluster_equals_brute_force():
    from tfrec.export.retrieval_index import make_index

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(500, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    query = tf.constant(emb[:6] + 0.1 * rng.normal(size=(6, 8)).astype(np.float32))
    excluded = tf.constant([[3, -1], [-1, -1], [0, 7], [-1, -1], [-1, -1], [5, 5]], tf.int64)
    holder = tf.Module()
    brute = make_index("brute_force", emb).attach(holder)
    want_v, want_i = brute.top_k(query, excluded, 10)
    part = make_index("partitioned", emb, clusters=20, probe=20).attach(tf.Module())
    got_v, got_i = part.top_k(query, excluded, 10)
    np.testing.assert_allclose(got_v.numpy(), want_v.numpy(), atol=1e-6)
    np.testing.assert_array_equal(got_i.numpy(), want_i.numpy())
    assert 3 not in got_i.numpy()[0] and not {0, 7} & set(got_i.numpy()[2])
    # Fewer candidates than asked for (one small cluster probed): -inf and -1 fill the rest.
    tiny = make_index("partitioned", emb, clusters=100, probe=1).attach(tf.Module())
    values, positions = tiny.top_k(query[:1], excluded[:1], 50)
    filled = np.isfinite(values.numpy()[0])
    assert not filled.all() and (positions.numpy()[0][~filled] == -1).all()
    with pytest.raises(ValueError, match="retrieval_index must be one of"):
        make_index("hnsw", emb)
    with pytest.raises(ValueError, match="probe must be in"):
        make_index("partitioned", emb, clusters=4, probe=5)


def test_partitioned_retrieve_export_recall_and_ops(trained, published):
    sim, df, model = trained
    result = published[2]  # exported with clusters=12, probe=4, examples=df.head(4), max_k=20
    assert disallowed_ops(result.path) == []
    manifest = json.load(open(os.path.join(result.path, "assets.extra", MANIFEST_FILE)))
    assert manifest["retrieval_index"]["kind"] == "partitioned" and manifest["retrieval_index"]["probe"] == 4
    loaded = tf.saved_model.load(result.path)
    rows = df.drop_duplicates("query").head(200)
    inputs = example_inputs(model, rows, k=10)["retrieve"]
    got = call(loaded, "retrieve", inputs)
    scores = encode_queries(model, rows) @ encode_items(model, sim.items).T
    truth = sim.items.item_id.to_numpy()[np.argsort(-scores, axis=1)[:, :10]]
    recall = np.mean([len(set(g.astype(str)) & set(t)) / 10 for g, t in zip(got["item_ids"], truth)])
    assert recall > 0.8, recall  # a third of the catalog is scanned
    # Returned scores are exact for the items returned, best first.
    found = got["scores"][np.isfinite(got["scores"])]
    assert (np.diff(got["scores"], axis=1)[np.isfinite(np.diff(got["scores"], axis=1))] <= 1e-6).all()
    assert len(found)
    excluded = dict(inputs)
    excluded["exclude_item_ids"] = got["item_ids"][:, :1].astype(object)
    again = call(loaded, "retrieve", excluded)
    assert not (again["item_ids"][:, :1] == got["item_ids"][:, :1]).any()
