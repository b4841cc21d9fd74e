"""Tests of the realistic-text search generator (tfrec.data.realistic_search).

The module needs the real catalog (../shared/data/online_retail.parquet); a
clone without it skips it. The catalog is read once; each generated table is
small (a few hundred queries), so the module runs in seconds.
"""

import numpy as np
import pytest
from conftest import ONLINE_RETAIL as DATA
from conftest import REPO

if not DATA.is_file():
    pytest.skip(
        f"Online Retail data not found at {DATA} (only development and CI checkouts have ../shared/data)",
        allow_module_level=True,
    )

from tfrec.baselines import BM25, tokenize  # noqa: E402
from tfrec.cli import main  # noqa: E402
from tfrec.data.realistic_search import (  # noqa: E402
    EXTRA_WORDS,
    RealisticSearchConfig,
    build_catalog,
    concepts,
    generate_realistic_search,
    graded_relevance,
    schema,
)
from tfrec.data.validation import validate  # noqa: E402
from tfrec.evaluation.metrics import grouped_ndcg  # noqa: E402
from tfrec.schema import FeatureSchema  # noqa: E402

SCHEMA_YAML = REPO / "training" / "configs" / "schemas" / "realistic_search.yaml"
# Only the chosen kind of noise: each word outside the target's title is then that noise.
QUIET = dict(synonym_rate=0.0, typo_rate=0.0, plural_rate=0.0, extra_word_rate=0.0)


@pytest.fixture(scope="module")
def catalog():
    return build_catalog(DATA)


@pytest.fixture(scope="module")
def rows(catalog):
    return generate_realistic_search(RealisticSearchConfig(num_queries=600, seed=3), catalog=catalog)


def _titles(catalog):
    return dict(zip(catalog["item_id"], catalog["title"]))


def _queries(rows):
    return rows.drop_duplicates("query_id")


def test_catalog_is_the_cleaned_real_products(catalog):
    assert 3_500 <= len(catalog) <= 4_100
    assert catalog["item_id"].is_unique
    assert not catalog["item_id"].isin(["POST", "DOT", "M", "BANK CHARGES", "AMAZONFEE"]).any()
    assert not catalog["item_id"].str.startswith("GIFT_").any()
    assert (catalog["price"] > 0).all() and (catalog["title"].str.strip() != "").all()
    title = _titles(catalog)
    assert title["85123A"] == "white hanging heart t-light holder"  # the best seller, a real description
    assert catalog.set_index("item_id").loc["85123A", "category"] == "holder"
    assert concepts("jumbo bag red retrospot")[2] == "bag"  # the head noun is not always the last word
    assert concepts("lunch bag  black skull.")[1] == ["lunch", "bag", "black", "skull"]


def test_relevance_grades_follow_the_concepts():
    # Intent: a red mug with hearts. "cup" is the concept mug, "love" the concept heart.
    head, mods = "mug", ["red", "heart"]
    grade = {
        title: graded_relevance(set(concepts(title)[1]), concepts(title)[2], head, mods)
        for title in ("red love cup", "red spotty mug", "blue mug", "red heart cushion", "blue cushion")
    }
    assert grade == {"red love cup": 3, "red spotty mug": 2, "blue mug": 1, "red heart cushion": 1, "blue cushion": 0}


def test_same_seed_same_rows_other_seed_other_rows(catalog):
    cfg = RealisticSearchConfig(num_queries=150, seed=7)
    a = generate_realistic_search(cfg, catalog=catalog)
    b = generate_realistic_search(RealisticSearchConfig(num_queries=150, seed=7), catalog=catalog)
    c = generate_realistic_search(RealisticSearchConfig(num_queries=150, seed=8), catalog=catalog)
    assert a.equals(b)
    assert not a["query"].equals(c["query"])


def test_shape_sizes_and_one_intent_per_query_text(rows):
    assert len(rows) == 600 * 15
    assert (rows.groupby("query_id").size() == 15).all()
    assert (rows.groupby("query_id")["position"].apply(lambda p: sorted(p) == list(range(1, 16)))).all()
    assert not rows.duplicated(["query_id", "item_id"]).any()
    # tfrec groups rows by the normalised query text: each text belongs to one session.
    key = rows["query"].str.casefold().str.split().str.join(" ")
    assert (rows.assign(key=key).groupby("key")["query_id"].nunique() == 1).all()


def test_every_slate_holds_its_target_with_the_top_label_and_all_grades_occur(rows):
    targets = rows[rows["is_target"]]
    assert targets["query_id"].nunique() == rows["query_id"].nunique() == len(targets)
    assert (targets["relevance"] == 3).all()
    assert (targets["item_id"] == targets["target_item_id"]).all()
    assert set(rows["relevance"]) == {0, 1, 2, 3}
    assert rows["relevance"].dtype.kind == "i"
    counts = rows["relevance"].value_counts(normalize=True)
    assert (counts > 0.02).all()
    # Clicks follow relevance (and position).
    ctr = rows.groupby("relevance")["click"].mean()
    assert ctr.is_monotonic_increasing and ctr[3] > 3 * ctr[0]
    assert (
        rows.groupby("position")["click"].mean().iloc[:3].mean()
        > rows.groupby("position")["click"].mean().iloc[-3:].mean()
    )


def test_queries_are_never_the_title_verbatim_and_mostly_partial(rows, catalog):
    title = _titles(catalog)
    q = _queries(rows)
    as_title = [" ".join(tokenize(title[t])) for t in q["target_item_id"]]
    assert not any(" ".join(tokenize(x)) == t for x, t in zip(q["query"], as_title))
    shorter = np.mean([len(tokenize(x)) < len(tokenize(title[t])) for x, t in zip(q["query"], q["target_item_id"])])
    assert shorter > 0.8


@pytest.mark.parametrize("kind", ["typo_rate", "synonym_rate"])
def test_noise_rate_is_near_the_configured_rate(catalog, kind):
    """With one kind of noise on, a query word that is not a word of the target's title is that noise."""
    from tfrec.data.realistic_search import _synonym

    rate = 0.3
    cfg = RealisticSearchConfig(num_queries=800, seed=5, **{**QUIET, kind: rate})
    q = _queries(generate_realistic_search(cfg, catalog=catalog))
    title = _titles(catalog)
    noisy = eligible = queries_noisy = 0
    rng = np.random.default_rng(0)
    for text, target in zip(q["query"], q["target_item_id"]):
        words, own = text.split(), set(tokenize(title[target]))
        changed = [w not in own for w in words]
        if kind == "typo_rate":
            can = [c or len(w) >= 4 for w, c in zip(words, changed)]
        else:
            can = [c or _synonym(w, rng) is not None for w, c in zip(words, changed)]
        noisy += sum(changed)
        eligible += sum(can)
        queries_noisy += any(changed)
    assert abs(noisy / eligible - rate) < 0.06, (kind, noisy / eligible)
    assert 0.1 < queries_noisy / len(q) < 0.6
    # Off means off (a query equal to its title gets one forced change: rare).
    quiet = _queries(
        generate_realistic_search(RealisticSearchConfig(num_queries=300, seed=5, **QUIET), catalog=catalog)
    )
    off = np.mean(
        [
            any(w not in set(tokenize(title[t])) for w in x.split())
            for x, t in zip(quiet["query"], quiet["target_item_id"])
        ]
    )
    assert off < 0.1


def test_default_queries_carry_typos_synonyms_and_extra_words(catalog):
    q = _queries(generate_realistic_search(RealisticSearchConfig(num_queries=500, seed=2), catalog=catalog))
    title = _titles(catalog)
    changed = np.mean(
        [any(w not in set(tokenize(title[t])) for w in x.split()) for x, t in zip(q["query"], q["target_item_id"])]
    )
    assert 0.3 < changed < 0.8
    extra = set(" ".join(EXTRA_WORDS).split())
    assert q["query"].map(lambda x: bool(set(x.split()) & extra)).mean() > 0.03


def test_synonym_candidates_defeat_bm25_but_it_beats_random(rows, catalog):
    q_tokens = rows["query"].map(lambda x: set(tokenize(x)))
    t_tokens = rows["title"].map(lambda x: set(tokenize(x)))
    disjoint = np.array([not (a & b) for a, b in zip(q_tokens, t_tokens)])
    # Relevant rows that share no word with their query exist: BM25 scores them 0.
    assert (disjoint & (rows["relevance"] >= 2).to_numpy()).sum() > 100
    same_head = rows["category"].to_numpy() == rows["intent"].str.split().str[0].to_numpy()
    assert (disjoint & same_head).mean() > 0.05
    bm25 = BM25().fit(catalog["title"].tolist())
    index = dict(zip(catalog["item_id"], range(len(catalog))))
    scores = bm25.score_pairs(rows["query"].tolist(), rows["item_id"].map(index).to_numpy())
    ndcg, n = grouped_ndcg(rows["query_id"], rows["relevance"], scores, 10)
    random, _ = grouped_ndcg(rows["query_id"], rows["relevance"], np.random.default_rng(0).random(len(rows)), 10)
    assert n == 600
    assert random + 0.1 < ndcg < 0.9, (ndcg, random)


def test_rows_validate_against_the_bundled_schema(rows):
    bundled = FeatureSchema.from_yaml(str(SCHEMA_YAML))
    assert bundled == schema()
    report = validate(rows, bundled)
    assert len(report.valid) == len(rows) and len(report.rejected) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("num_queries", 0), ("typo_rate", 1.5), ("synonym_rate", -0.1), ("slate_size", 4), ("seed", "x"), ("start", "x")],
)
def test_bad_config_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"realistic_search.{field}"):
        RealisticSearchConfig(**{field: value})


def test_missing_catalog_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file at"):
        generate_realistic_search(RealisticSearchConfig(num_queries=5), catalog_path=tmp_path / "none.parquet")


def test_cli_writes_a_file_that_tfrec_validate_accepts(tmp_path, capsys):
    out = tmp_path / "sub" / "rows.parquet"
    assert main(["simulate-search", "--catalog", str(DATA), "--output", str(out), "--num-queries", "40"]) == 0
    assert out.is_file() and "600 rows, 40 queries" in capsys.readouterr().out
    assert main(["validate", "--data", str(out), "--schema", str(SCHEMA_YAML)]) == 0
    assert main(["simulate-search", "--catalog", str(tmp_path / "no.parquet"), "--output", str(out)]) == 2
    assert "no file at" in capsys.readouterr().err
