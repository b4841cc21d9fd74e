"""LoRA on the text tower (`model.text.lora_rank`): what trains, `.keras` round trips, exports.

A tiny BERT saved as a keras-hub preset (`tiny_bert_preset`) stands in for
MiniLM. keras-hub#2701 (open) reports LoRA models whose reload answers
differently; Keras itself saves a LoRA layer with the adapters merged into its
kernel and loads it with zero adapters, and keras-hub's backbone config does not
record LoRA. These tests hold tfrec's round trip to the same variables and
bit-identical outputs, with adapters that still train afterwards.
"""

import sys

import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, "tests")
from test_tables import search_table  # noqa: E402

from tfrec.models.config import ModelConfig, TextConfig  # noqa: E402
from tfrec.schema import FeatureSchema  # noqa: E402

SCHEMA = FeatureSchema(
    query_text="search_query",
    item_id="sku",
    item_text="title",
    item_categorical=["category"],
    item_price="price",
    click_label="clicked",
    position="slot",
)
RANK = 2


def test_lora_rank_config_is_checked_by_name(tiny_bert_preset):
    assert TextConfig(preset=tiny_bert_preset, lora_rank=0).lora_rank is None  # 0 = off
    assert TextConfig(preset=tiny_bert_preset, lora_rank=8).lora_rank == 8
    with pytest.raises(ValueError, match=r"model\.text\.lora_rank: must be >= 1 .*got -2"):
        TextConfig(preset=tiny_bert_preset, lora_rank=-2)
    with pytest.raises(ValueError, match=r"model\.text\.lora_rank: expected an integer or None, got 'four'"):
        TextConfig(preset=tiny_bert_preset, lora_rank="four")
    with pytest.raises(ValueError, match=r"model\.text\.lora_rank: .*model\.text\.preset is null"):
        TextConfig(lora_rank=4)  # from scratch: nothing pretrained to adapt
    with pytest.raises(ValueError, match=r"model\.text\.lora_rank: .*model\.text\.trainable: false"):
        ModelConfig.from_dict({"text": {"preset": tiny_bert_preset, "trainable": False, "lora_rank": 4}})


def _weights(model):
    return [np.array(v.numpy()) for v in model.weights]


@pytest.fixture(scope="module")
def trained(tiny_bert_preset, tmp_path_factory):
    """A LoRA model before and after two Trainer steps, its `.keras` reload (`finalize`) and the log."""
    import contextlib
    import io

    from tfrec.jobs.config import TrainingConfig
    from tfrec.models.builder import build_model
    from tfrec.training.epoch_data import EpochBatches
    from tfrec.training.trainer import Trainer

    table = search_table(sessions=16)
    config = ModelConfig.from_dict(
        {
            "embedding_dim": 8,
            "id_embedding_dim": 4,
            "tower_units": [16],
            "expert_units": [8],
            "cross_layers": 1,
            "text": {"preset": tiny_bert_preset, "lora_rank": RANK, "dropout": 0.0},
        }
    )
    model = build_model(SCHEMA, config, table)
    before = {v.path: np.array(v.numpy()) for v in model.text_encoder.backbone.weights}
    training = TrainingConfig(
        epochs=1, batch_size=64, learning_rate=1e-2, early_stopping_patience=0, tensorboard=False, verbose=0
    )
    trainer = Trainer(model, training, str(tmp_path_factory.mktemp("lora_run")))
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        trainer.fit(EpochBatches.from_dataframe(table, SCHEMA, 64, seed=0))  # 128 rows: two steps
    assert trainer.optimizer_steps == 2
    reloaded = trainer.finalize()  # model.keras saved and loaded
    return table, model, before, reloaded, log.getvalue()


def test_only_adapters_of_the_backbone_train(trained):
    from tfrec.models.builder import parameter_counts

    table, model, before, _, log = trained
    encoder = model.text_encoder
    backbone = encoder.backbone
    adapters = [v for v in backbone.weights if "lora_kernel" in v.path]
    # The tiny BERT has one attention layer: A [16, 2 heads, RANK] and B [RANK, 8] on query and value.
    assert len(adapters) == 4 and encoder.lora_rank == RANK
    assert {v.path for v in backbone.trainable_weights} == {v.path for v in adapters}
    counts = parameter_counts(model)
    assert counts["backbone_trainable"] == counts["lora"] == sum(int(np.prod(v.shape)) for v in adapters) > 0
    assert counts["lora"] < counts["backbone_total"] and counts["trainable"] < counts["total"]
    # The training log says so.
    assert f"parameters: {counts['trainable']:,} trainable of {counts['total']:,}" in log
    assert f"text backbone: {counts['lora']:,} trainable of {counts['backbone_total']:,} (LoRA rank {RANK}" in log
    # After two steps the backbone's own weights are bit for bit the pretrained ones; the adapters moved.
    for v in backbone.weights:
        if "lora_kernel" in v.path:
            assert not np.array_equal(v.numpy(), before[v.path]), v.path
        else:
            np.testing.assert_array_equal(v.numpy(), before[v.path], err_msg=v.path)
    b = [v for v in adapters if v.path.endswith("lora_kernel_b")]
    assert all(np.abs(v.numpy()).max() > 0 for v in b)  # B starts at 0: the adapters now change the outputs


def test_keras_round_trip_keeps_the_adapters_and_the_outputs_exactly(trained, tmp_path):
    import keras

    from tfrec.models.builder import parameter_counts
    from tfrec.models.inference import features_of, predict_dataframe

    table, model, _, reloaded, _ = trained
    assert reloaded.text_encoder.lora_rank == RANK
    # The same variables with the same values: frozen kernels and adapters apart, not merged.
    assert [v.shape for v in reloaded.weights] == [v.shape for v in model.weights]
    for got, want in zip(_weights(reloaded), _weights(model), strict=True):
        np.testing.assert_array_equal(got, want)
    assert parameter_counts(reloaded) == parameter_counts(model)
    rows = table.head(40)
    want, got = predict_dataframe(model, rows), predict_dataframe(reloaded, rows)
    assert set(got) == set(want) >= {"score", "ctr", "query_embedding", "item_embedding"}
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    # A second save/load of the reloaded model (and a .weights.h5 into it) changes nothing either.
    path = str(tmp_path / "again.keras")
    reloaded.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_array_equal(predict_dataframe(again, rows)["score"], want["score"])
    again.save_weights(str(tmp_path / "w.weights.h5"))
    model.load_weights(str(tmp_path / "w.weights.h5"))
    for got, want_w in zip(_weights(model), _weights(reloaded), strict=True):
        np.testing.assert_array_equal(got, want_w)

    # The reloaded adapters still train (Keras alone would load them as zeros: a saddle with no gradient).
    with tf.GradientTape() as tape:
        out = again({k: tf.constant(v) for k, v in features_of(rows, again.schema).items()}, training=True)
        loss = tf.reduce_sum(out["score"])
    lora = list(again.text_encoder.backbone.trainable_weights)
    grads = tape.gradient(loss, lora)
    assert lora and all(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_export_carries_the_adapters_and_matches_in_process(trained, tmp_path):
    from tfrec.export import export_model
    from tfrec.export.ops import disallowed_ops
    from tfrec.export.saved_model import example_inputs
    from tfrec.models.inference import encode_items, encode_queries, predict_dataframe

    table, model, _, _, _ = trained
    catalog = table.drop_duplicates("sku")[["sku", "title", "category", "price"]]
    result = export_model(model, str(tmp_path / "models"), catalog=catalog, examples=table.head(4), verbose=False)
    assert disallowed_ops(result.path) == []
    loaded = tf.saved_model.load(result.path)
    assert len({id(v) for v in loaded.variables if "lora_kernel" in v.name}) == 4  # carried, not merged away
    rows = table.head(24)
    inputs = example_inputs(model, rows, k=5)

    def call(name):
        fn = loaded.signatures[name]
        return {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in inputs[name].items()}).items()}

    expected = predict_dataframe(model, rows.drop(columns=["slot"]))
    got = call("score")
    for key in ("score", "ctr"):
        np.testing.assert_allclose(got[key], expected[key], atol=1e-5, rtol=1e-5, err_msg=key)
    np.testing.assert_allclose(call("encode_query")["query_embedding"], encode_queries(model, rows), atol=1e-5)
    np.testing.assert_allclose(call("encode_item")["item_embedding"], encode_items(model, rows), atol=1e-5)
    # The adapters matter: zeroing B changes the in-process query embedding the export reproduced.
    b = [v for v in model.text_encoder.backbone.weights if v.path.endswith("lora_kernel_b")]
    kept = [v.numpy() for v in b]
    try:
        for v in b:
            v.assign(np.zeros(v.shape, "float32"))
        assert np.abs(encode_queries(model, rows) - call("encode_query")["query_embedding"]).max() > 1e-4
    finally:
        for v, value in zip(b, kept, strict=True):
            v.assign(value)


def test_no_new_ops_beside_the_same_encoder_without_lora(trained, tiny_bert_preset):
    """The carried adapters add MatMul/Mul/AddV2 to the kernel: ops the BERT graph has already."""
    from tfrec.layers.text_encoder import TextEncoder

    def op_types(encoder):
        fn = tf.function(lambda texts: encoder(texts)).get_concrete_function(tf.TensorSpec([None], tf.string))
        graph = fn.graph.as_graph_def()
        # The ops of the graph and of the functions it calls (the length buckets' cond and while bodies).
        return {node.op for node in graph.node} | {
            node.op for function in graph.library.function for node in function.node_def
        }

    lora = trained[1].text_encoder
    plain = TextEncoder.from_preset(tiny_bert_preset, sequence_length=lora.sequence_length)
    lora_ops, plain_ops = op_types(lora), op_types(plain)
    assert lora_ops <= plain_ops, sorted(lora_ops - plain_ops)
    assert {"MatMul", "Mul", "AddV2"} <= plain_ops


def test_a_warm_start_from_a_lora_run_carries_the_adapters(trained):
    """Warm start (issue 19) from a LoRA model: the new model has LoRA on, the same adapters and answers."""
    from tfrec.models.builder import build_model
    from tfrec.models.inference import predict_dataframe
    from tfrec.training.warm_start import warm_start_weights

    table, _, _, reloaded, _ = trained
    newer = search_table(seed=1, sessions=16)  # other sessions; some ids are new
    rows = table.head(40)
    model = build_model(SCHEMA, reloaded.config, newer, previous=reloaded)
    warm_start_weights(reloaded, model)
    assert model.text_encoder.lora_rank == RANK
    want = {v.path: v.numpy() for v in reloaded.text_encoder.backbone.weights}
    got = {v.path: v.numpy() for v in model.text_encoder.backbone.weights}
    assert set(got) == set(want) and any("lora_kernel" in p for p in got)
    for path in want:
        np.testing.assert_array_equal(got[path], want[path], err_msg=path)
    assert {v.path for v in model.text_encoder.backbone.trainable_weights} == {p for p in got if "lora_kernel" in p}
    np.testing.assert_allclose(
        predict_dataframe(model, rows)["score"], predict_dataframe(reloaded, rows)["score"], atol=1e-6
    )
