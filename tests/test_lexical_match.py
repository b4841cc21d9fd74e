"""LexicalMatch: the in-graph lexical features of (query, item text), and the ranking heads that read them."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from layer_harness import run_layer_test

from tfrec.baselines.bm25 import BM25
from tfrec.layers.lexical_match import LexicalMatch, normalize_text, tokenize

CATALOG = ["Red running shoes", "oak desk", "blue shoes, blue laces"]
FEATURE = {name: i for i, name in enumerate(LexicalMatch.FEATURES)}


def features(layer, queries, items):
    return layer(tf.constant(queries), tf.constant(items)).numpy()


@pytest.fixture(scope="module")
def layer():
    return LexicalMatch().adapt(CATALOG)


def test_exact_overlap_is_the_share_of_query_terms_in_the_item_text(layer):
    got = features(
        layer,
        ["red shoes", "red desk", "green lamp", "shoes shoes desk chair", ""],
        ["Red running shoes", "Red running shoes", "Red running shoes", "blue shoes", "oak desk"],
    )
    np.testing.assert_allclose(got[:, FEATURE["exact"]], [1.0, 0.5, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(got[:, FEATURE["log_query_terms"]], np.log1p([2, 2, 2, 4, 0]), rtol=1e-6)
    np.testing.assert_allclose(got[:, FEATURE["log_item_terms"]], np.log1p([3, 3, 3, 2, 2]), rtol=1e-6)
    assert np.isfinite(got).all()


def test_partial_matches_prefixes_of_three_characters_or_more(layer):
    queries = ["shoe", "running shoes", "run", "ru", "desks", "de", "lamp"]
    items = ["blue shoes", "run shoe", "Red running shoes", "Red running shoes", "oak desk", "oak desk", "lampshade"]
    got = features(layer, queries, items)
    np.testing.assert_allclose(got[:, FEATURE["exact"]], [0, 0, 0, 0, 0, 0, 0])
    # shoe/shoes, running/run + shoes/shoe, run/running, "ru" too short, desks/desk, "de" too short, lamp/lampshade.
    np.testing.assert_allclose(got[:, FEATURE["partial"]], [1, 1, 1, 0, 1, 0, 1])
    assert (got[:, FEATURE["partial"]] >= got[:, FEATURE["exact"]]).all()


def test_phrase_is_the_query_terms_consecutive_and_in_order(layer):
    got = features(
        layer,
        ["running shoes", "shoes running", "red shoes", "blue", "red running shoes", ""],
        ["Red running shoes"] * 6,
    )
    np.testing.assert_array_equal(got[:, FEATURE["phrase"]], [1, 0, 0, 0, 1, 0])


def test_bm25_equals_the_baseline_on_the_catalog(layer):
    baseline = BM25(k1=1.2, b=0.75).fit(CATALOG)
    queries = ["red shoes", "blue blue laces", "desk", "shoes", "zebra", "", "oak red shoes laces", "Blue, SHOES!"]
    documents = np.array([0, 2, 1, 2, 0, 1, 0, 2])
    expected = baseline.score_pairs(queries, documents)
    assert (expected > 0).sum() >= 5  # the check compares real scores, not zeros
    got = layer.bm25(tf.constant(queries), tf.constant([CATALOG[d] for d in documents])).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # The feature vector carries it as log(1 + bm25) and over its bound sum(idf) (k1 + 1).
    vector = features(layer, queries, [CATALOG[d] for d in documents])
    np.testing.assert_allclose(np.expm1(vector[:, FEATURE["log_bm25"]]), expected, rtol=1e-5, atol=1e-5)
    assert ((vector[:, FEATURE["bm25_fraction"]] >= 0) & (vector[:, FEATURE["bm25_fraction"]] < 1)).all()
    # Every (query, document) score of the dense matrix too.
    all_pairs = [(q, d) for q in queries for d in range(len(CATALOG))]
    got = layer.bm25(tf.constant([q for q, _ in all_pairs]), tf.constant([CATALOG[d] for _, d in all_pairs]))
    np.testing.assert_allclose(got.numpy().reshape(len(queries), -1), baseline.scores(queries), rtol=1e-5, atol=1e-5)


def test_missing_catalog_texts_are_empty_documents_as_in_the_baseline():
    catalog = ["red shoes", None, np.nan, "red red desk"]
    layer = LexicalMatch().adapt(catalog)
    queries = ["red", "red desk", "shoes"]
    expected = BM25().fit(catalog).score_pairs(queries, [0, 3, 0])
    got = layer.bm25(tf.constant(queries), tf.constant(["red shoes", "red red desk", "red shoes"])).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert layer.mean_length.numpy() == pytest.approx(5 / 4)


def test_case_accents_and_punctuation_do_not_matter(layer):
    assert normalize_text(["Crème BRÛLÉE, Straße Ångström"]).numpy()[0].decode() == "creme brulee, strasse angstrom"
    assert tokenize(["Red-Running  SHOES!!(size_42)"]).to_list() == [[b"red", b"running", b"shoes", b"size_42"]]
    plain = features(layer, ["red shoes", "oak desk"], ["red running shoes", "oak desk"])
    noisy = features(layer, ["RED, Shoes!", "Óak—Désk"], ["Réd running-SHOES.", "OAK   desk?"])
    np.testing.assert_allclose(noisy, plain, rtol=1e-6)
    # An accented catalog gives the IDF of its unaccented terms.
    accented = LexicalMatch().adapt(["Réd running shoes", "óak DESK", "blue shoes, blue laces"])
    np.testing.assert_allclose(accented.idf.numpy(), layer.idf.numpy())


def test_runs_in_tf_function_and_saves_with_its_idf(layer, tmp_path):
    queries, items = tf.constant(["red shoe", "oak desk", "lamp"]), tf.constant(CATALOG)
    eager = layer(queries, items)
    graph = tf.function(lambda q, i: layer(q, i))(queries, items)
    np.testing.assert_array_equal(graph.numpy(), eager.numpy())
    out = run_layer_test(layer, (queries[:, None], items[:, None]), tmp_path, expected_shapes={"0": (3, 7)})
    np.testing.assert_array_equal(out["0"], eager.numpy())
    # The IDF comes back from the file (a fresh layer of the same config has zeros).
    path = str(tmp_path / "alone.keras")
    q_in, i_in = keras.Input((), dtype="string"), keras.Input((), dtype="string")
    keras.Model([q_in, i_in], layer(q_in, i_in)).save(path)
    loaded = keras.models.load_model(path)
    restored = next(w for w in loaded.layers if isinstance(w, LexicalMatch))
    np.testing.assert_array_equal(restored.idf.numpy(), layer.idf.numpy())
    np.testing.assert_array_equal(restored.term_ids.numpy(), layer.term_ids.numpy())
    assert restored.mean_length.numpy() == pytest.approx(np.mean([3, 2, 4]))
    assert LexicalMatch.from_config(layer.get_config()).get_config() == layer.get_config()


def test_clear_errors():
    with pytest.raises(ValueError, match="adapt"):
        LexicalMatch()(tf.constant(["a"]), tf.constant(["a"]))
    with pytest.raises(ValueError, match="no terms"):
        LexicalMatch().adapt(["", "--"])
    with pytest.raises(ValueError, match="built for 3 terms"):
        LexicalMatch().adapt(["a b c"]).adapt(["a b"])
    with pytest.raises(ValueError, match="b in"):
        LexicalMatch(b=2.0)


# ----------------------------------------------------------- in the model
def planted_logs(seed, words, items_per_word=2, rows=1200):
    """Search logs where a row is clicked (and relevant) iff the query's word is in the title."""
    rng = np.random.default_rng(seed)
    titles = []
    for w in words:
        for _ in range(items_per_word):
            others = rng.choice([x for x in words if x != w], 2, replace=False)
            titles.append(" ".join(rng.permutation([w, *others])).title())
    ids = [f"{seed}-{i}" for i in range(len(titles))]
    has = np.array([[w in t.lower().split() for t in titles] for w in words])  # [word, item]
    out = []
    for _ in range(rows):
        word = int(rng.integers(len(words)))
        clicked = bool(rng.random() < 0.5)
        item = int(rng.choice(np.flatnonzero(has[word] == clicked)))
        out.append((words[word], ids[item], titles[item], float(clicked), 3.0 if clicked else 1.0))
    logs = pd.DataFrame(out, columns=["query", "item_id", "title", "click", "relevance"])
    return logs, pd.DataFrame({"item_id": ids, "title": titles})


def words_of(seed, n):
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 6)) for _ in range(n)]


@pytest.fixture(scope="module")
def planted():
    from tfrec.data.validation import validate
    from tfrec.schema import FeatureSchema

    schema = FeatureSchema(
        query_text="query",
        item_id="item_id",
        item_text="title",
        click_label="click",
        relevance_label="relevance",
        relevance_range=(1.0, 3.0),
    )
    vocabulary = words_of(0, 80)
    train, catalog = planted_logs(1, vocabulary[:40])
    test, test_catalog = planted_logs(2, vocabulary[40:], rows=400)  # words and items never seen in training
    return schema, validate(train, schema).valid, validate(test, schema).valid, catalog, test_catalog


def train_planted(planted, lexical_features):
    from tfrec.data.pipeline import dataset_from_dataframe
    from tfrec.models import ModelConfig, build_model

    schema, train, _, _, _ = planted
    keras.utils.set_random_seed(0)
    config = ModelConfig(
        embedding_dim=8,
        id_embedding_dim=4,
        tower_units=[16],
        expert_units=[16],
        cross_layers=1,
        use_text=False,  # the towers read ids alone: the text reaches the model only as lexical features
        lexical_features=lexical_features,
        loss_weights={"retrieval": 0.1, "ctr": 1.0, "relevance": 1.0},
    )
    model = build_model(schema, config, train)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    data = dataset_from_dataframe(train, schema, batch_size=64, shuffle=True, seed=0, drop_remainder=True)
    history = model.fit(data, epochs=8, verbose=0)  # "Gradients do not exist" is an error (pyproject)
    return model, history


@pytest.fixture(scope="module")
def lexical_model(planted):
    return train_planted(planted, True)[0]


def test_search_models_read_lexical_features_by_default_and_others_do_not(lexical_model, planted):
    from tfrec.data.validation import validate
    from tfrec.models import ModelConfig, build_model
    from tfrec.schema import FeatureSchema

    assert isinstance(lexical_model.lexical_match, LexicalMatch)
    assert lexical_model.lexical_match in lexical_model.components()
    assert ModelConfig().lexical_features is True
    assert lexical_model.lexical_match.num_terms == 40  # the training catalog's words only
    # Every trainable weight got a gradient in fit (the fixture). The cross network reads the towers' hidden
    # states (16 each), their embeddings' product (8) and the 7 features; the retrieval score is the dot product.
    assert {tuple(w.shape) for w in lexical_model.cross_network.weights} >= {(16 + 16 + 8 + 7, 16 + 16 + 8 + 7)}
    # Interactions: no query text, no lexical features.
    schema = FeatureSchema(user_id="user_id", item_id="item_id", item_text="title", click_label="click")
    _, train, _, _, _ = planted
    rows = validate(train.assign(user_id="u" + train.index.astype(str)), schema).valid
    plain = build_model(schema, ModelConfig(embedding_dim=8, tower_units=[8], use_text=False), rows)
    assert plain.lexical_match is None
    with pytest.raises(ValueError, match="lexical_features: expected true or false"):
        ModelConfig.from_dict({"lexical_features": "yes"})


def test_heads_learn_a_planted_lexical_signal_on_unseen_words(lexical_model, planted):
    from tfrec.evaluation.metrics import auc
    from tfrec.models.inference import predict_dataframe

    _, _, test, _, _ = planted
    without, _ = train_planted(planted, False)
    scores = {}
    for name, model in (("lexical", lexical_model), ("without", without)):
        out = predict_dataframe(model, test)
        rmse = float(np.sqrt(np.mean((out["relevance"] - test.relevance.to_numpy()) ** 2)))
        scores[name] = (auc(test.click.to_numpy(), out["ctr"]), rmse)
    print(scores)
    assert scores["lexical"][0] > 0.95 and scores["lexical"][0] > scores["without"][0] + 0.2
    assert scores["lexical"][1] < 0.5 and scores["lexical"][1] < scores["without"][1] - 0.3


def test_export_scores_like_the_model_with_stock_ops(lexical_model, planted, tmp_path):
    import tensorflow_text  # noqa: F401  (the BERT's TF Text ops, to load in Python)

    from tfrec.export import export_model
    from tfrec.export.ops import disallowed_ops
    from tfrec.export.saved_model import example_inputs
    from tfrec.models.inference import predict_dataframe

    _, _, test, catalog, _ = planted
    result = export_model(lexical_model, str(tmp_path), catalog=catalog, examples=test.head(4), max_k=5, verbose=False)
    assert disallowed_ops(result.path) == []
    loaded = tf.saved_model.load(result.path)
    rows = test.head(64)
    inputs = example_inputs(lexical_model, rows)["score"]
    got = loaded.signatures["score"](**{k: tf.constant(v) for k, v in inputs.items()})
    expected = predict_dataframe(lexical_model, rows)
    for key in ("ctr", "relevance", "score"):
        np.testing.assert_allclose(got[key].numpy(), expected[key], rtol=1e-5, atol=1e-5, err_msg=key)
    # The served CTR moves with the lexical match: the query's word swapped out of the title.
    swapped = dict(inputs, title=np.array(["zzz"] * len(rows), dtype=object))
    moved = loaded.signatures["score"](**{k: tf.constant(v) for k, v in swapped.items()})["ctr"].numpy()
    assert not np.allclose(moved, got["ctr"].numpy())
