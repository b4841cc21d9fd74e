"""Realistic-text search data: real Online Retail product titles, noisy queries from a planted intent.

The embedded simulator (`tfrec.data.simulator`) writes titles from a small word
list, so every query word is a title word and a from-scratch text tower has
nothing hard to learn. This generator keeps the planted ground truth but puts
it on real text: the items are the ~3,900 products of the UCI Online Retail
catalog (`../shared/data/online_retail.parquet`, found like
`tfrec.data.online_retail.find_online_retail`), and the queries are what a
shopper might type for one of them. Its output is a *search-shaped table*, one
row per shown (query, item) pair, for `tfrec train --data FILE` with the
schema `training/configs/schemas/realistic_search.yaml`.

Example:

```python
from tfrec.data.realistic_search import RealisticSearchConfig, generate_realistic_search

rows = generate_realistic_search(RealisticSearchConfig(num_queries=500, seed=1))
rows[["query", "title", "relevance", "position", "click"]].head(15)
rows.to_parquet("data/realistic_search.parquet", index=False)
```

or from the shell, then train on it:

```
tfrec simulate-search --output data/realistic_search.parquet
tfrec train --config training/configs/realistic_search.yaml --data data/realistic_search.parquet
```

Design.

* **Catalog.** Sale lines with a product StockCode (not in
  `online_retail.NON_PRODUCT_CODES`, no gift voucher), a positive price and
  quantity, not a cancellation, and a non-blank description. Per code: the
  most common description (`online_retail._most_common`), the median unit
  price and the number of sale lines (popularity). Codes whose description has
  no word of three letters or more are dropped. `title` is the description
  lowercased with whitespace collapsed (real words, real abbreviations such as
  "hldr").
* **Concepts.** A title token maps to a *concept*: abbreviations expanded
  ("hldr" -> holder), plurals singularised, and synonyms mapped to one
  canonical word (`SYNONYM_GROUPS`: mug/cup, bag/tote/shopper, holder/stand,
  light/lamp, heart/love, christmas/xmas, ...). An item's concepts are those
  of its content tokens (stop words and numbers left out). Its *head* is the
  concept of the rightmost token that is a product noun (`PRODUCT_NOUNS`),
  else of its last content token ("jumbo bag red retrospot" -> bag); the head
  is also the item's `category`.
* **Intent.** Each query plants an intent from a target product drawn by
  popularity: the target's head plus 1-2 of its other concepts (colours,
  materials, themes and sizes first, `MODIFIER_WORDS`, else any).
* **Relevance** (0..3) of an item to the intent, in concept space: 3 = same
  head and every modifier, 2 = same head and some modifiers, 1 = same head and
  none, or another head with every modifier (two or more); else 0. Then, with
  probability `label_noise`, a label moves one grade up or down (clipped);
  the target keeps 3.
* **Query rendering** (what the user types): the intent's words as they are in
  the target's title; each modifier dropped with `drop_rate` (the head with
  `head_drop_rate`, one word always kept), so the intent can be more specific
  than the query, as it is in real logs; the words shuffled with
  `shuffle_rate`; each word with a synonym replaced by one with
  `synonym_rate`; the head's number flipped (bag <-> bags) with
  `plural_rate`; each word of 4+ letters misspelt (a letter dropped, swapped
  with the next, doubled or replaced by a keyboard neighbour) with
  `typo_rate`; a generic word ("cheap", "gift", "for kids", ...) added with
  `extra_word_rate`. A query equal to its target's title gets a forced
  synonym or typo, so no query is the title verbatim. Each query text
  (case-folded, whitespace collapsed: tfrec's query key) is used by one
  session only, so a query's rows never mix two intents; a colliding
  rendering is redrawn.
* **Slate** (`slate_size` rows): the target; up to `num_lexical` items sharing
  a token with the query (hard negatives BM25 likes; more shared tokens,
  more likely); up to `num_synonym` items with the intent's head concept that
  share *no* token with the query (BM25 scores them 0, a semantic encoder can
  find them); up to `num_same_head` more items with the head concept; random
  items by popularity for the rest.
* **Logged ranking and clicks.** The logging ranker orders the slate by
  `relevance + Normal(0, logging_noise)`; the row at 1-based `position` p is
  examined with probability `p ** -position_bias` and clicked when examined
  with probability `CLICK_PROBABILITY[relevance]`.

The rates, sizes and noise are `RealisticSearchConfig` fields. The concept
rules, the synonym map and the misspelling model are hand-written here: no
library turns a product catalog into noisy e-commerce queries with planted
graded relevance.

Columns: `query_id`, `query`, `item_id` (StockCode), `title`, `category`,
`price`, `position` (1-based), `relevance` (int 0..3), `click` (0/1),
`event_time`, and the truth columns `target_item_id`, `intent` (the intent's
concepts, head first) and `is_target`.

Data credit: Daqing Chen, Sai Liang Sain and Kun Guo, "Online Retail", UCI
Machine Learning Repository, https://doi.org/10.24432/C5BW33 (CC BY 4.0).
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np
import pandas as pd

from tfrec.config_validation import check_config
from tfrec.data.online_retail import NON_PRODUCT_CODES, NON_PRODUCT_PREFIXES, _most_common, find_online_retail
from tfrec.schema import FeatureSchema

__all__ = [
    "CLICK_PROBABILITY",
    "PRODUCT_NOUNS",
    "SYNONYM_GROUPS",
    "RealisticSearchConfig",
    "build_catalog",
    "concepts",
    "generate_realistic_search",
    "graded_relevance",
    "schema",
]

#: Click probability of an examined row by relevance grade 0..3.
CLICK_PROBABILITY = (0.03, 0.12, 0.35, 0.7)

#: Real e-commerce synonyms; the first word of a group is its concept. Query
#: rendering replaces a word by another of its group; relevance treats them
#: as one concept.
SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    ("mug", "cup"),
    ("bag", "tote", "shopper"),
    ("holder", "stand"),
    ("light", "lamp"),
    ("heart", "love"),
    ("christmas", "xmas", "festive"),
    ("red", "scarlet"),
    ("small", "mini", "little"),
    ("large", "big", "jumbo", "giant"),
    ("set", "pack"),
    ("polkadot", "dotty", "spotty"),
    ("wooden", "wood", "timber"),
    ("metal", "metallic"),
    ("cushion", "pillow"),
    ("necklace", "pendant"),
    ("bowl", "dish"),
    ("bottle", "flask"),
    ("box", "container"),
    ("tray", "platter"),
    ("sign", "plaque"),
    ("notebook", "journal", "notepad"),
    ("garland", "bunting", "banner"),
    ("decoration", "ornament", "bauble"),
    ("purse", "wallet"),
    ("napkin", "serviette"),
    ("childrens", "kids", "children", "childs"),
    ("ivory", "cream"),
    ("grey", "gray"),
    ("hook", "hanger", "peg"),
    ("jar", "canister"),
    ("cabinet", "cupboard"),
    ("knob", "handle"),
    ("umbrella", "parasol"),
    ("apron", "pinafore"),
    ("rabbit", "bunny"),
    ("cat", "kitten"),
    ("flower", "floral", "blossom"),
    ("vintage", "retro", "antique"),
    ("doormat", "mat", "rug"),
    ("frame", "photoframe"),
    ("card", "greeting"),
    ("earring", "studs"),
    ("clock", "timepiece"),
    ("pot", "planter"),
)

#: Abbreviations of the catalog, expanded before the concept is looked up.
ABBREVIATIONS = {
    "hldr": "holder",
    "asstd": "assorted",
    "ass": "assorted",
    "asst": "assorted",
    "col": "colour",
    "neckl": "necklace",
    "dec": "decoration",
    "sml": "small",
    "lge": "large",
    "wht": "white",
    "tlight": "light",
    "tealight": "light",
    "xmas": "christmas",
}

#: Product nouns: the rightmost of them in a title is its head (its category).
PRODUCT_NOUNS = frozenset(
    """
    bag holder light necklace bracelet earring card sign cover mug bowl cushion frame mirror clock ring hook
    bottle garland charm tray jar notebook cup drawer tile plate doormat case kit cabinet purse tube tin magnet
    pencil knob pen sticker book pot bunting lantern warmer parasol bell dish hanger tape umbrella ball tissue
    box toy jigsaw rack wreath apron doorstop handbag pendant wallet chain towel napkin coaster bin saucer lamp
    tag soap sketchbook mobile lampshade candleholder calendar pad container decoration beaker jug bucket
    organiser bauble brooch mould washbag thermometer chest tote mat placemat teacup candle cakestand
    chalkboard ornament wrap stand basket lights cutlery doily stool chair table shelf vase planter teapot
    glass spoon fork knife cutter scale stamp lunchbox backpack rucksack bib sack ribbon ribbons reel
    pin brush torch fan spinning top kite game puzzle puppet doll crayon chalk eraser sharpener ruler
    fob money bank cake case canister door wardrobe bed bench cushions bunny egg heart star tree
    """.split()
) - {"heart", "star", "tree", "egg", "cake", "money", "bunny", "door", "spinning", "top", "bed"}

#: Colours, materials, themes and sizes: preferred as an intent's modifiers.
MODIFIER_WORDS = frozenset(
    """
    pink blue red white black green silver ivory cream purple gold yellow orange brown turquoise amber copper
    pastel multicolour lavender grey natural clear glass metal wooden ceramic zinc enamel felt crystal paper
    wicker acrylic pearl cotton lace slate porcelain plastic fabric tin christmas retrospot polkadot vintage
    heart flower rose paisley spaceboy woodland easter butterfly bird star skull strawberry birthday party
    garden kitchen london regency pantry gingham daisy cherry fairy dog cat rabbit owl botanical union jack
    small large mini jumbo medium giant tall round square hanging french english scandinavian moroccan
    childrens baroque doily spot stripe chocolate tea coffee cake egg tree angel snowflake reindeer santa
    apple love sweetheart circus dinosaur knitted embroidered painted glitter diamante beaded jewelled
    """.split()
)

STOP_WORDS = frozenset(
    "of and in with the a an for on to design t w s d m b p o i your own de des la le colour assorted".split()
)
# "design", "colour" and "assorted" are words of many titles and no intent.

NO_SINGULAR = frozenset(
    """christmas glass dress cress chess bus gas lotus cactus asparagus us paris tennis plus its this was
    has is as yes bonus circus campus octopus moss kiss boss mess compass grass mattress address
    princess hippopotamus canvas atlas cosmos iris""".split()
)

#: Generic words users add that no title needs.
EXTRA_WORDS = ("cheap", "gift", "for kids", "best", "new", "cute", "uk", "sale", "present")

#: Neighbouring keys of a QWERTY keyboard (for replacement typos).
_KEYBOARD = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
_NEAR = {}
for _r, _row in enumerate(_KEYBOARD):
    for _c, _ch in enumerate(_row):
        near = [_row[j] for j in (_c - 1, _c + 1) if 0 <= j < len(_row)]
        for _dr in (-1, 1):
            if 0 <= _r + _dr < len(_KEYBOARD):
                other = _KEYBOARD[_r + _dr]
                near += [other[j] for j in (_c - 1, _c, _c + 1) if 0 <= j < len(other)]
        _NEAR[_ch] = "".join(sorted(set(near)))

_CONCEPT_OF = {w: group[0] for group in SYNONYM_GROUPS for w in group}
_SURFACES = {group[0]: group for group in SYNONYM_GROUPS}
_WORD = re.compile(r"[a-z0-9]+")


def singular(word: str) -> str:
    """A simple singular: `"boxes"` -> `"box"`, `"doilies"` -> `"doily"`, `"christmas"` unchanged."""
    if len(word) <= 3 or word in NO_SINGULAR or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def plural(word: str) -> str:
    """A simple plural: `"box"` -> `"boxes"`, `"doily"` -> `"doilies"`, `"bag"` -> `"bags"`."""
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es" if not word.endswith("s") or word in NO_SINGULAR else word
    if word.endswith("y") and len(word) > 2 and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def concept(token: str) -> str | None:
    """The concept of one lowercase token, or None for a stop word or a number."""
    token = ABBREVIATIONS.get(token, token)
    if token in _CONCEPT_OF:
        return _CONCEPT_OF[token]
    if token.isdigit() or token in STOP_WORDS or len(token) < 2 or not token.isalpha():
        return None
    one = singular(token)
    one = ABBREVIATIONS.get(one, one)
    return _CONCEPT_OF.get(one, one)


def concepts(title: str) -> tuple[list[str], list[str], str]:
    """A title's content tokens, their concepts (same order) and its head concept.

    Example: `concepts("jumbo bag red retrospot")` is
    `(["jumbo", "bag", "red", "retrospot"], ["large", "bag", "red", "retrospot"], "bag")`.
    """
    tokens, cons = [], []
    for t in _WORD.findall(title.lower()):
        c = concept(t)
        if c is not None:
            tokens.append(t)
            cons.append(c)
    head = None
    for t, c in zip(reversed(tokens), reversed(cons)):
        if c in PRODUCT_NOUNS or singular(ABBREVIATIONS.get(t, t)) in PRODUCT_NOUNS:
            head = c
            break
    if head is None:
        head = cons[-1] if cons else ""
    return tokens, cons, head


def graded_relevance(item_concepts: set, item_head: str, head: str, modifiers) -> int:
    """0..3 relevance of an item to an intent (head concept, modifier concepts); see the module docstring."""
    matched = sum(m in item_concepts for m in modifiers)
    if item_head == head:
        if not modifiers or matched == len(modifiers):
            return 3
        return 2 if matched else 1
    return 1 if len(modifiers) >= 2 and matched == len(modifiers) else 0


@dataclasses.dataclass
class RealisticSearchConfig:
    """Knobs of the realistic search generator. Defaults: 3,000 queries x 15 = 45,000 rows.

    Args:
        num_queries: sessions, each with one distinct query text.
        slate_size: rows per query (positions 1..slate_size).
        num_lexical: most candidates sharing a token with the query.
        num_synonym: most candidates with the intent's head concept and no
            token in common with the query.
        num_same_head: most further candidates with the intent's head concept.
        max_modifiers: most modifier concepts in an intent (at least one
            where the target has any).
        drop_rate: probability a modifier word is left out of the query.
        head_drop_rate: probability the head word is left out.
        shuffle_rate: probability the query's words are shuffled.
        synonym_rate: probability a word that has synonyms is replaced by one.
        typo_rate: probability a word of 4+ letters is misspelt.
        plural_rate: probability the head word's number is flipped.
        extra_word_rate: probability a generic word ("cheap", "gift", ...) is added.
        label_noise: probability a non-target label moves one grade.
        logging_noise: standard deviation of the logging ranker's noise.
        position_bias: examination probability is `position ** -position_bias`.
        days: the sessions' times are spread over this many days.
        start: first day of the sessions.
        seed: random seed; equal seeds (and catalog) give identical rows.
    """

    num_queries: int = 3_000
    slate_size: int = 15
    num_lexical: int = 6
    num_synonym: int = 3
    num_same_head: int = 2
    max_modifiers: int = 2
    drop_rate: float = 0.25
    head_drop_rate: float = 0.05
    shuffle_rate: float = 0.5
    synonym_rate: float = 0.3
    typo_rate: float = 0.08
    plural_rate: float = 0.15
    extra_word_rate: float = 0.1
    label_noise: float = 0.05
    logging_noise: float = 1.5
    position_bias: float = 0.7
    days: int = 30
    start: str = "2024-01-01"
    seed: int = 0

    def __post_init__(self):
        rates = (
            "drop_rate",
            "head_drop_rate",
            "shuffle_rate",
            "synonym_rate",
            "typo_rate",
            "plural_rate",
            "extra_word_rate",
            "label_noise",
        )
        check_config(
            self,
            "realistic_search",
            ranges={
                "num_queries": ">= 1",
                "slate_size": ">= 2",
                "num_lexical": ">= 0",
                "num_synonym": ">= 0",
                "num_same_head": ">= 0",
                "max_modifiers": ">= 1",
                **{name: "[0, 1]" for name in rates},
                "logging_noise": ">= 0",
                "position_bias": ">= 0",
                "days": ">= 1",
                "seed": ">= 0",
            },
        )
        try:
            pd.Timestamp(self.start)
        except (TypeError, ValueError) as e:
            raise ValueError(f"realistic_search.start: not a date: {self.start!r}") from e
        wanted = 1 + self.num_lexical + self.num_synonym + self.num_same_head
        if wanted > self.slate_size:
            raise ValueError(
                f"realistic_search.slate_size ({self.slate_size}) is less than 1 + num_lexical + num_synonym "
                f"+ num_same_head ({wanted})"
            )


def schema() -> FeatureSchema:
    """The `FeatureSchema` of the generated rows (as `training/configs/schemas/realistic_search.yaml`)."""
    return FeatureSchema(
        query_text="query",
        item_id="item_id",
        item_text="title",
        item_categorical=["category"],
        item_price="price",
        click_label="click",
        position="position",
        relevance_label="relevance",
        relevance_range=(0, 3),
        event_time="event_time",
    )


def build_catalog(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The cleaned product catalog: `item_id`, `title`, `price`, `n_lines`, `category`, sorted by `item_id`.

    Raises:
        FileNotFoundError: no Online Retail file (the message says where it looked).
    """
    path = find_online_retail(path)
    df = pd.read_parquet(path, columns=["InvoiceNo", "StockCode", "Description", "Quantity", "UnitPrice"])
    code = df["StockCode"].astype(str).str.strip().str.upper()
    desc = df["Description"].astype(str).str.lower().str.split().str.join(" ")
    keep = (
        ~code.isin(NON_PRODUCT_CODES)
        & ~code.str.startswith(NON_PRODUCT_PREFIXES)
        & (pd.to_numeric(df["UnitPrice"], errors="coerce") > 0)
        & (pd.to_numeric(df["Quantity"], errors="coerce") > 0)
        & ~df["InvoiceNo"].astype(str).str.upper().str.startswith("C")
        & df["Description"].notna()
        & (desc.str.len() > 0)
        & desc.str.contains(r"[a-z]{3}", regex=True)
    )
    code, desc, price = code[keep], desc[keep], df.loc[keep, "UnitPrice"].astype(float)
    items = pd.DataFrame(
        {
            "title": _most_common(code, desc, "item_id"),
            "price": price.groupby(code).median(),
            "n_lines": code.value_counts(),
        }
    )
    items.index.name = "item_id"
    items = items.reset_index().sort_values("item_id", kind="stable").reset_index(drop=True)
    items["item_id"] = items["item_id"].astype(str)
    items["title"] = items["title"].astype(str)
    items["n_lines"] = items["n_lines"].astype("int64")
    items["category"] = [concepts(t)[2] for t in items["title"]]
    return items[items["category"] != ""].reset_index(drop=True)


def _typo(word: str, rng: np.random.Generator) -> str:
    """One misspelling: a letter dropped, swapped with the next, doubled or replaced by a keyboard neighbour."""
    i = int(rng.integers(1, len(word) - 1))  # keep the first letter, as most typos do
    kind = int(rng.integers(0, 4))
    if kind == 0:
        return word[:i] + word[i + 1 :]
    if kind == 1:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :] if word[i] != word[i + 1] else word[:i] + word[i + 1 :]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    near = _NEAR.get(word[i], "")
    return word[:i] + near[int(rng.integers(0, len(near)))] + word[i + 1 :] if near else word[:i] + word[i + 1 :]


def _synonym(word: str, rng: np.random.Generator) -> str | None:
    """Another surface word of the word's concept, or None when it has none."""
    c = concept(word)
    group = _SURFACES.get(c) if c is not None else None
    if not group:
        return None
    others = [w for w in group if w != word and w != singular(word) and concept(w) == c]
    if not others:
        return None
    return others[int(rng.integers(0, len(others)))]


def _render(words, head_index, cfg: RealisticSearchConfig, rng: np.random.Generator):
    """A noisy query from the intent's surface words: (query, noise flags)."""
    keep = [i for i in range(len(words)) if rng.random() >= (cfg.head_drop_rate if i == head_index else cfg.drop_rate)]
    if not keep:
        keep = [head_index]
    out = [words[i] for i in keep]
    is_head = [i == head_index for i in keep]
    flags = {"synonym": False, "typo": False, "plural": False, "extra": False, "shuffled": False}
    for j, w in enumerate(out):
        if rng.random() < cfg.synonym_rate:
            s = _synonym(w, rng)
            if s is not None:
                out[j], flags["synonym"] = s, True
        if is_head[j] and rng.random() < cfg.plural_rate:
            w2 = out[j]
            flipped = singular(w2) if singular(w2) != w2 else plural(w2)
            if flipped != w2:
                out[j], flags["plural"] = flipped, True
        if len(out[j]) >= 4 and out[j].isalpha() and rng.random() < cfg.typo_rate:
            out[j], flags["typo"] = _typo(out[j], rng), True
    if len(out) > 1 and rng.random() < cfg.shuffle_rate:
        order = rng.permutation(len(out))
        flags["shuffled"] = bool((order != np.arange(len(out))).any())
        out = [out[k] for k in order]
    if rng.random() < cfg.extra_word_rate:
        extra = EXTRA_WORDS[int(rng.integers(0, len(EXTRA_WORDS)))]
        out = [extra, *out] if rng.random() < 0.5 else [*out, extra]
        flags["extra"] = True
    return " ".join(out), flags


def _force_noise(query: str, rng: np.random.Generator) -> str:
    """A synonym for one word where there is one, else a typo in the longest word."""
    words = query.split()
    for j in rng.permutation(len(words)):
        s = _synonym(words[j], rng)
        if s is not None:
            words[j] = s
            return " ".join(words)
    j = max(range(len(words)), key=lambda k: len(words[k]))
    if len(words[j]) >= 3:
        words[j] = _typo(words[j], rng)
    else:
        words.append(EXTRA_WORDS[int(rng.integers(0, len(EXTRA_WORDS)))])
    return " ".join(words)


def _pick(pool: np.ndarray, n: int, weights: np.ndarray | None, rng: np.random.Generator) -> np.ndarray:
    if n <= 0 or len(pool) == 0:
        return pool[:0]
    n = min(n, len(pool))
    p = None if weights is None else weights / weights.sum()
    return rng.choice(pool, n, replace=False, p=p)


def generate_realistic_search(
    config: RealisticSearchConfig | None = None,
    catalog_path: str | os.PathLike | None = None,
    catalog: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Search-shaped rows (one per shown (query, item) pair) on the real Online Retail titles.

    Args:
        config: the knobs (default `RealisticSearchConfig()`).
        catalog_path: the Online Retail parquet (default: see
            `tfrec.data.online_retail.find_online_retail`).
        catalog: an already built `build_catalog` frame (skips reading the file).

    Returns:
        A DataFrame with the columns of the module docstring, in session order
        and, within a session, by position. Deterministic for a config and catalog.

    Raises:
        FileNotFoundError: no Online Retail file.
        ValueError: a bad config value (the field is named).
    """
    cfg = config or RealisticSearchConfig()
    items = build_catalog(catalog_path) if catalog is None else catalog
    if len(items) < cfg.slate_size:
        raise ValueError(f"realistic_search.slate_size ({cfg.slate_size}) exceeds the catalog's {len(items)} items")
    rng = np.random.default_rng(cfg.seed)
    n_items = len(items)
    titles = items["title"].to_numpy(dtype=object)
    parsed = [concepts(t) for t in titles]
    item_tokens = [set(_WORD.findall(t)) for t in titles]
    item_concepts = [set(p[1]) for p in parsed]
    item_head = np.array([p[2] for p in parsed], dtype=object)
    popularity = items["n_lines"].to_numpy(dtype=np.float64)
    # Inverted indexes (lists in item order: no set iteration, so runs are reproducible).
    by_token: dict[str, list[int]] = {}
    for i, toks in enumerate(item_tokens):
        for t in sorted(toks):
            by_token.setdefault(t, []).append(i)
    by_head: dict[str, list[int]] = {}
    for i, h in enumerate(item_head):
        by_head.setdefault(h, []).append(i)
    by_token_arr = {t: np.asarray(v) for t, v in by_token.items()}
    by_head_arr = {h: np.asarray(v) for h, v in by_head.items()}
    target_p = popularity / popularity.sum()

    seen_queries: set[str] = set()
    rows = []
    session = 0
    attempts = 0
    max_attempts = 50 * cfg.num_queries
    while session < cfg.num_queries:
        attempts += 1
        if attempts > max_attempts:
            raise ValueError(
                f"realistic_search.num_queries ({cfg.num_queries}): could only render {session} distinct "
                f"queries from {n_items} items; ask for fewer or add noise"
            )
        target = int(rng.choice(n_items, p=target_p))
        tokens, cons, head = parsed[target]
        # Intent: the head plus 1..max_modifiers other concepts (colours, materials, themes first).
        head_pos = max(j for j, c in enumerate(cons) if c == head)
        others = [j for j, c in enumerate(cons) if c != head and cons.index(c) == j]
        preferred = [j for j in others if cons[j] in MODIFIER_WORDS or tokens[j] in MODIFIER_WORDS]
        pool = preferred if preferred else others
        n_mod = min(len(pool), int(rng.integers(1, cfg.max_modifiers + 1)))
        mods = sorted(rng.choice(pool, n_mod, replace=False).tolist()) if n_mod else []
        modifiers = [cons[j] for j in mods]
        order = sorted([*mods, head_pos])
        words = [tokens[j] for j in order]
        query, _ = _render(words, order.index(head_pos), cfg, rng)
        if " ".join(query.split()) == " ".join(_WORD.findall(titles[target])):
            query = _force_noise(query, rng)
        key = " ".join(query.casefold().split())
        if key in seen_queries:
            continue
        seen_queries.add(key)

        # Slate: target, lexical neighbours, synonym matches, same head, random.
        q_tokens = set(_WORD.findall(key))
        chosen = [target]
        taken = np.zeros(n_items, dtype=bool)
        taken[target] = True
        overlap = np.zeros(n_items)
        for t in sorted(q_tokens):
            if t in by_token_arr:
                overlap[by_token_arr[t]] += 1
        lexical = np.flatnonzero((overlap > 0) & ~taken)
        pick = _pick(lexical, cfg.num_lexical, overlap[lexical] ** 2, rng)
        chosen += pick.tolist()
        taken[pick] = True
        same = by_head_arr.get(head, np.zeros(0, dtype=int))
        synonym = same[(overlap[same] == 0) & ~taken[same]]
        pick = _pick(synonym, cfg.num_synonym, None, rng)
        chosen += pick.tolist()
        taken[pick] = True
        rest = same[~taken[same]]
        pick = _pick(rest, cfg.num_same_head, None, rng)
        chosen += pick.tolist()
        taken[pick] = True
        free = np.flatnonzero(~taken)
        chosen += _pick(free, cfg.slate_size - len(chosen), popularity[free], rng).tolist()
        chosen_arr = np.asarray(chosen)

        rel = np.array([graded_relevance(item_concepts[i], item_head[i], head, modifiers) for i in chosen_arr])
        noisy = rng.random(len(rel)) < cfg.label_noise
        rel = np.where(noisy, np.clip(rel + rng.choice([-1, 1], len(rel)), 0, 3), rel)
        rel[0] = 3  # the target
        logging = rel + rng.normal(0.0, cfg.logging_noise, len(rel)) if cfg.logging_noise else rel.astype(float)
        ranked = np.argsort(-logging, kind="stable")
        position = np.arange(1, len(ranked) + 1)
        examined = rng.random(len(ranked)) < position.astype(float) ** -cfg.position_bias
        attractive = rng.random(len(ranked)) < np.asarray(CLICK_PROBABILITY)[rel[ranked]]
        click = (examined & attractive).astype(np.int64)
        rows.append(
            {
                "query_id": np.full(len(ranked), session),
                "query": [query] * len(ranked),
                "item": chosen_arr[ranked],
                "position": position,
                "relevance": rel[ranked],
                "click": click,
                "target": np.full(len(ranked), target),
                "intent": [" ".join([head, *modifiers])] * len(ranked),
            }
        )
        session += 1

    flat = {k: np.concatenate([r[k] for r in rows]) for k in ("query_id", "item", "position", "relevance", "click")}
    flat["query"] = np.concatenate([np.asarray(r["query"], dtype=object) for r in rows])
    flat["intent"] = np.concatenate([np.asarray(r["intent"], dtype=object) for r in rows])
    flat["target"] = np.concatenate([r["target"] for r in rows])
    offsets = np.sort(rng.random(cfg.num_queries)) * cfg.days * 86400.0
    times = pd.Timestamp(cfg.start) + pd.to_timedelta(np.round(offsets), unit="s")
    item_ids = items["item_id"].to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "query_id": flat["query_id"].astype(np.int64),
            "query": flat["query"],
            "item_id": item_ids[flat["item"]],
            "title": titles[flat["item"]],
            "category": item_head[flat["item"]],
            "price": items["price"].to_numpy(dtype=np.float64)[flat["item"]],
            "position": flat["position"].astype(np.int64),
            "relevance": flat["relevance"].astype(np.int64),
            "click": flat["click"],
            "event_time": times.to_numpy()[flat["query_id"]],
            "target_item_id": item_ids[flat["target"]],
            "intent": flat["intent"],
            "is_target": flat["item"] == flat["target"],
        }
    )
