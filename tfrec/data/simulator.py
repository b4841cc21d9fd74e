"""A vectorised e-commerce simulator with planted ground truth.

The simulator is `tfrec`'s embedded default data set. It draws:

* items in categories, each with a brand, a price and a title of real English
  words (brand, colour, attribute, product noun). Every attribute word is a
  direction in a latent space, so an item's latent vector is mostly readable
  from its title: a text tower can place cold-start items;
* users with latent interests (a mixture over categories), a latent value
  propensity `z`, observable attributes correlated with `z`, and a history of
  items bought before the logged window;
* search sessions: a user, an intent (a category and attribute words), and a
  query made of those words;
* impressions from a position-biased logging ranker, clicks drawn from the
  true click probability `examination(position) * attractiveness`, purchases
  and revenue after clicks;
* each user's future value, zero-inflated lognormal from `z`.

It returns the true probabilities and expected values beside the samples, so
evaluation can put the oracle (best achievable) AUC, recall and Gini next to
a model's.

Example:

```python
data = simulate(SimulatorConfig(num_sessions=20_000, seed=3))
data.impressions.head()        # one row per impression, schema columns
data.schema()                  # the FeatureSchema of `impressions`
data.impressions.true_ctr      # planted click probability of each row
```
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pandas as pd

from tfrec.config_validation import check_config
from tfrec.data import catalog_words, logging_policy
from tfrec.schema import FeatureSchema


@dataclasses.dataclass
class SimulatorConfig:
    """Knobs of the simulated site. Defaults give about 1M impressions.

    Args:
        num_users: number of users.
        num_items: number of items in the catalog.
        num_sessions: search sessions; each shows `slate_size` items.
        slate_size: items shown per query (positions 1..slate_size).
        latent_dim: dimension of the latent user/item space.
        history_max: most items in a user's pre-window purchase history.
        days: length of the logged window in days.
        start: first day of the window.
        base_ctr_logit: intercept of the attractiveness logit.
        affinity_weight: weight of query-item and user-item affinity.
        position_bias: examination probability is `position ** -position_bias`.
        logging_temperature: temperature of the logging ranker, a Plackett-Luce
            policy over the true click logits (sampled as `logit + t * Gumbel`
            noise); lower is closer to the oracle order, higher explores more.
        value_zero_share: planted share of users with zero future value,
            on average over users.
        value_sigma: lognormal sigma of positive future values.
        seed: random seed; equal seeds give identical data.
    """

    num_users: int = 20_000
    num_items: int = 5_000
    num_sessions: int = 100_000
    slate_size: int = 10
    latent_dim: int = 16
    history_max: int = 10
    days: int = 60
    start: str = "2024-01-01"
    base_ctr_logit: float = -4.0
    affinity_weight: float = 0.7
    position_bias: float = 0.6
    logging_temperature: float = 1.2
    value_zero_share: float = 0.6
    value_sigma: float = 0.8
    seed: int = 0

    def __post_init__(self):
        check_config(
            self,
            "simulator",
            ranges={
                "num_users": ">= 1",
                "num_items": ">= 1",
                "num_sessions": ">= 1",
                "slate_size": ">= 1",
                "latent_dim": ">= 1",
                "history_max": ">= 1",
                "days": ">= 1",
                "position_bias": ">= 0",
                "logging_temperature": "> 0",
                "value_zero_share": "(0, 1)",
                "value_sigma": "> 0",
                "seed": ">= 0",
            },
        )
        if self.slate_size > self.num_items:
            raise ValueError(f"simulator.slate_size ({self.slate_size}) exceeds simulator.num_items ({self.num_items})")


@dataclasses.dataclass
class SimulatedData:
    """Samples and planted truth from `simulate`.

    Attributes:
        impressions: one row per shown item: the schema's columns plus
            `session_id`, `position`, `purchase` and the truth columns
            `true_ctr` (click probability of the row), `true_attractiveness`
            (click probability at position 1), `true_relevance_score`,
            `true_value_probability` and `true_expected_value` (of the user),
            `true_purchase_value_if_clicked` (expected purchase value of a
            click on the row) and `propensity`: the probability with which the
            logging policy showed the row's item at the row's position
            (`truth["logging_position_probabilities"]` holds every item's
            `[slate item, position]` probabilities, items in logged order).
        items: the catalog, one row per item, with `true_quality`.
        users: one row per user with attributes, history, `future_value` and
            the truth columns `true_propensity`, `true_value_probability`,
            `true_expected_value`.
        item_latent: `[num_items, latent_dim]` latent item vectors.
        user_latent: `[num_users, latent_dim]` latent user vectors.
        config: the `SimulatorConfig` used.
    """

    impressions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame
    item_latent: np.ndarray
    user_latent: np.ndarray
    config: SimulatorConfig
    truth: dict = dataclasses.field(default_factory=dict, repr=False)

    def true_click_logits(self, session_ids, item_index=None) -> np.ndarray:
        """Planted attractiveness logits of items for sessions (position 1).

        Args:
            session_ids: `[n]` session ids (the `session_id` column).
            item_index: `[n, m]` catalog rows to score; all items if None.

        Returns:
            `[n, m]` (or `[n, num_items]`) logits; `sigmoid` of them is the
            click probability at position 1. The oracle ranks by them.
        """
        t = self.truth
        session_ids = np.asarray(session_ids) - t.get("session_offset", 0)
        users = t["session_user"][session_ids]
        q = t["query_latent"][session_ids]
        u = self.user_latent[users]
        if item_index is None:
            items = self.item_latent
            aff = q @ items.T + 0.5 * (u @ items.T)
            quality, rel_price = t["quality"][None, :], t["relative_log_price"][None, :]
        else:
            items = self.item_latent[item_index]
            aff = np.einsum("nd,nmd->nm", q, items) + 0.5 * np.einsum("nd,nmd->nm", u, items)
            quality, rel_price = t["quality"][item_index], t["relative_log_price"][item_index]
        price_penalty = 0.3 * rel_price * (1 - 0.3 * np.tanh(t["propensity"][users]))[:, None]
        return self.config.base_ctr_logit + self.config.affinity_weight * aff + quality - price_penalty

    def true_query_affinity(self, session_ids, item_index) -> np.ndarray:
        """Query-item latent affinity (graded relevance is binned from it)."""
        q = self.truth["query_latent"][np.asarray(session_ids) - self.truth.get("session_offset", 0)]
        return np.einsum("nd,nmd->nm", q, self.item_latent[item_index])

    @property
    def intent_categories(self) -> list[str]:
        """The item categories, in the order of `true_query_intent`'s columns (every category of the site)."""
        return list(catalog_words.CATEGORIES)

    def true_query_intent(self, session_ids, block_size: int = 1024) -> np.ndarray:
        """Planted query intent: P(category | session's query, user), `[n, len(intent_categories)]`, rows sum to 1.

        The category mix of the clicks the session would give if every catalog
        item were shown at position 1: `P(c) ∝ Σ_{i in c} sigmoid(true_click_logits(session, i))`
        (a category without items in the catalog gets 0). Its argmax is
        usually the category the query was generated from
        (`truth["session_category"]`), but not always: the user's taste and
        item quality move clicks across categories too.
        """
        session_ids = np.asarray(session_ids)
        names = self.intent_categories
        column = {name: j for j, name in enumerate(names)}
        item_category = np.array([column[c] for c in self.items["item_category"]], dtype=np.int64)
        one_hot = np.zeros((len(item_category), len(names)))
        one_hot[np.arange(len(item_category)), item_category] = 1.0
        out = np.empty((len(session_ids), len(names)))
        for start in range(0, len(session_ids), block_size):  # [block, num_items] logits at a time
            rows = slice(start, start + block_size)
            out[rows] = _sigmoid(self.true_click_logits(session_ids[rows])) @ one_hot
        return out / out.sum(axis=1, keepdims=True)

    def schema(self) -> FeatureSchema:
        """The `FeatureSchema` of `impressions` (and of `users`/`items`)."""
        return FeatureSchema(
            query_text="query",
            user_id="user_id",
            user_categorical=["user_segment", "user_country"],
            user_numeric=["user_tenure_days", "user_orders_90d"],
            user_history="user_history",
            item_id="item_id",
            item_text="item_title",
            item_categorical=["item_category", "item_brand"],
            item_price="item_price",
            click_label="click",
            value_label="future_value",
            relevance_label="relevance",
            relevance_range=(0, 3),
            event_time="event_time",
            position="position",
            history_length=self.config.history_max,
        )

    def user_schema(self) -> FeatureSchema:
        """Schema of `users`: user features (no query) and the future value label."""
        s = self.schema()
        return s.restrict([c for c in s.user_feature_names if c != s.query_text] + [s.value_label])

    def item_schema(self) -> FeatureSchema:
        """Schema of `items`: the catalog's features."""
        s = self.schema()
        return s.restrict(s.item_feature_names)

    def summary(self) -> dict:
        imp = self.impressions
        return {
            "impressions": len(imp),
            "sessions": int(imp.session_id.nunique()),
            "users": len(self.users),
            "items": len(self.items),
            "ctr": float(imp.click.mean()),
            "mean_true_ctr": float(imp.true_ctr.mean()),
            "purchases": int(imp.purchase.sum()),
            "revenue": float(imp.purchase_value.sum()),
            "value_zero_share": float((self.users.future_value == 0).mean()),
            "planted_value_zero_share": float(1 - self.users.true_value_probability.mean()),
        }


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class _Catalog:
    """Items: category, brand, words, latent vector, price, quality."""

    def __init__(self, cfg: SimulatorConfig, rng: np.random.Generator):
        cats = list(catalog_words.CATEGORIES)
        self.categories = cats
        n, d = cfg.num_items, cfg.latent_dim
        scale = 1.0 / np.sqrt(d)
        self.cat_vec = rng.normal(0, 1, (len(cats), d)) * scale * 1.6
        # Each category's attribute words are directions within its region.
        self.attr_vec = {
            c: rng.normal(0, 1, (len(catalog_words.CATEGORIES[c]["attributes"]), d)) * scale * 1.1 for c in cats
        }
        self.noun_vec = {
            c: rng.normal(0, 1, (len(catalog_words.CATEGORIES[c]["nouns"]), d)) * scale * 0.7 for c in cats
        }
        # Items sorted by category so that "a random item of category k" is
        # start[k] + floor(u * count[k]).
        cat = np.sort(rng.integers(0, len(cats), n))
        self.cat = cat
        self.count = np.bincount(cat, minlength=len(cats))
        self.start = np.concatenate([[0], np.cumsum(self.count)[:-1]])
        n_attr = np.array([len(catalog_words.CATEGORIES[c]["attributes"]) for c in cats])
        n_noun = np.array([len(catalog_words.CATEGORIES[c]["nouns"]) for c in cats])
        n_brand = np.array([len(catalog_words.CATEGORIES[c]["brands"]) for c in cats])
        self.attr = (rng.random(n) * n_attr[cat]).astype(int)
        self.noun = (rng.random(n) * n_noun[cat]).astype(int)
        self.brand = (rng.random(n) * n_brand[cat]).astype(int)
        self.colour = rng.integers(0, len(catalog_words.COLOURS), n)
        latent = self.cat_vec[cat].copy()
        for k, c in enumerate(cats):
            rows = cat == k
            latent[rows] += self.attr_vec[c][self.attr[rows]] + self.noun_vec[c][self.noun[rows]]
        latent += rng.normal(0, 1, (n, d)) * scale * 0.35
        self.latent = latent
        brand_effect = rng.normal(0, 0.35, (len(cats), n_brand.max()))
        self.quality = brand_effect[cat, self.brand] + rng.normal(0, 0.35, n)
        base = np.array([catalog_words.BASE_PRICE[c] for c in cats])
        brand_premium = np.exp(rng.normal(0, 0.3, (len(cats), n_brand.max())))
        self.price = np.round(base[cat] * brand_premium[cat, self.brand] * np.exp(rng.normal(0, 0.35, n)), 2).clip(0.5)
        width = len(str(n))
        self.ids = np.array([f"i{j:0{width}d}" for j in range(n)], dtype=object)
        self.titles = np.array([self._title(k, j) for j, k in enumerate(cat)], dtype=object)

    def _title(self, k, j):
        words = catalog_words.CATEGORIES[self.categories[k]]
        return " ".join(
            [
                words["brands"][self.brand[j]],
                catalog_words.COLOURS[self.colour[j]],
                words["attributes"][self.attr[j]],
                words["nouns"][self.noun[j]],
            ]
        )

    def subset(self, rows: np.ndarray, price: np.ndarray | None = None) -> _Catalog:
        """The catalog of items `rows` (ascending, so still sorted by category), at `price` (of all items) if given."""
        rows = np.asarray(rows)
        sub = copy.copy(self)
        for name in ("cat", "attr", "noun", "brand", "colour", "latent", "quality", "ids", "titles"):
            setattr(sub, name, getattr(self, name)[rows])
        sub.price = (self.price if price is None else np.asarray(price))[rows]
        sub.count = np.bincount(sub.cat, minlength=len(self.categories))
        sub.start = np.concatenate([[0], np.cumsum(sub.count)[:-1]])
        return sub

    def brand_names(self):
        return np.array(
            [catalog_words.CATEGORIES[self.categories[k]]["brands"][b] for k, b in zip(self.cat, self.brand)],
            dtype=object,
        )


def simulate(config: SimulatorConfig | None = None) -> SimulatedData:
    """Draws a simulated e-commerce log. Deterministic for a given config."""
    cfg = config or SimulatorConfig()
    rng = np.random.default_rng(cfg.seed)
    cat = _Catalog(cfg, rng)
    users = _Users(cfg, cat, rng)
    return _draw_log(cfg, cat, users, rng)


class _Users:
    """Users: interests, latent vectors, value propensity, attributes, pre-window history and future value."""

    def __init__(self, cfg: SimulatorConfig, cat: _Catalog, rng: np.random.Generator):
        n_cat, d = len(cat.categories), cfg.latent_dim
        scale = 1.0 / np.sqrt(d)
        U = cfg.num_users
        self.interests = rng.dirichlet(np.full(n_cat, 0.25), U)  # [U, C]
        self.noise = rng.normal(0, 1, (U, d)) * scale * 0.5
        self.latent = self.interests @ cat.cat_vec + self.noise
        propensity = rng.normal(0, 1, U)
        self.propensity = propensity
        self.activity = np.exp(0.5 * propensity + rng.normal(0, 0.5, U))
        self.segment_idx = np.digitize(propensity + rng.normal(0, 0.6, U), [-0.8, 0.2, 1.0])
        self.country_idx = rng.choice(len(catalog_words.COUNTRIES), U, p=[0.5, 0.12, 0.12, 0.1, 0.08, 0.08])
        self.tenure = np.round(np.exp(5.0 + 0.6 * propensity + rng.normal(0, 0.6, U)))
        self.orders_90d = rng.poisson(np.exp(0.3 + 0.7 * propensity))
        width = len(str(U))
        self.ids = np.array([f"u{j:0{width}d}" for j in range(U)], dtype=object)

        # Pre-window purchase history: items of the user's favourite categories.
        hist_len = np.minimum(rng.poisson(1.0 + 2.0 * self.activity), cfg.history_max)
        hist_cat = _sample_categories(rng, self.interests, cfg.history_max)  # [U, H]
        hist_item = cat.start[hist_cat] + (rng.random(hist_cat.shape) * cat.count[hist_cat]).astype(int)
        hist_item = np.where(cat.count[hist_cat] > 0, hist_item, rng.integers(0, len(cat.ids), hist_cat.shape))
        self.histories = np.empty(U, dtype=object)
        for u in range(U):
            self.histories[u] = list(cat.ids[hist_item[u, : hist_len[u]]])

        # Future value: zero-inflated lognormal from the propensity. The
        # intercept is set so the mean P(value > 0) is 1 - value_zero_share.
        slope = 1.2
        intercept = _solve_intercept(propensity, slope, 1.0 - cfg.value_zero_share)
        self.value_p = _sigmoid(intercept + slope * propensity)
        mu = 3.5 + 0.7 * propensity
        self.expected_value = self.value_p * np.exp(mu + cfg.value_sigma**2 / 2)
        positive = rng.random(U) < self.value_p
        self.future_value = np.where(positive, np.round(np.exp(mu + cfg.value_sigma * rng.normal(0, 1, U)), 2), 0.0)


def _draw_log(
    cfg: SimulatorConfig,
    cat: _Catalog,
    users: _Users,
    rng: np.random.Generator,
    active_users: np.ndarray | None = None,
    session_offset: int = 0,
) -> SimulatedData:
    """Draws `cfg.num_sessions` search sessions of `active_users` (all by default) over `cat` in `cfg`'s window.

    Session ids start at `session_offset`.
    """
    user_latent, propensity = users.latent, users.propensity
    segment_idx, country_idx, tenure, orders_90d = users.segment_idx, users.country_idx, users.tenure, users.orders_90d
    user_ids, histories = users.ids, users.histories
    value_p, expected_value, future_value = users.value_p, users.expected_value, users.future_value
    active = np.arange(len(users.ids)) if active_users is None else np.asarray(active_users)

    # ---------------------------------------------------------- sessions
    S, K = cfg.num_sessions, cfg.slate_size
    activity = users.activity[active]
    sess_user = active[rng.choice(len(active), S, p=activity / activity.sum())]
    sess_cat = _sample_categories(rng, users.interests[sess_user], 1)[:, 0]
    # Intent: an attribute word (and a noun) of the category.
    n_attr = np.array([len(catalog_words.CATEGORIES[c]["attributes"]) for c in cat.categories])
    n_noun = np.array([len(catalog_words.CATEGORIES[c]["nouns"]) for c in cat.categories])
    sess_attr = (rng.random(S) * n_attr[sess_cat]).astype(int)
    sess_noun = (rng.random(S) * n_noun[sess_cat]).astype(int)
    query_form = rng.choice(4, S, p=[0.35, 0.35, 0.15, 0.15])
    q_latent = cat.cat_vec[sess_cat].copy()
    attr_vecs = np.stack(
        [np.pad(cat.attr_vec[c], ((0, n_attr.max() - len(cat.attr_vec[c])), (0, 0))) for c in cat.categories]
    )
    noun_vecs = np.stack(
        [np.pad(cat.noun_vec[c], ((0, n_noun.max() - len(cat.noun_vec[c])), (0, 0))) for c in cat.categories]
    )
    uses_attr = query_form != 1
    uses_noun = query_form != 0
    q_latent += uses_attr[:, None] * attr_vecs[sess_cat, sess_attr]
    q_latent += uses_noun[:, None] * noun_vecs[sess_cat, sess_noun]
    query_brand = rng.integers(0, 1 << 30, S)
    query_colour = rng.integers(0, len(catalog_words.COLOURS), S)
    queries = np.empty(S, dtype=object)
    for s in range(S):
        words = catalog_words.CATEGORIES[cat.categories[sess_cat[s]]]
        parts = []
        form = query_form[s]
        if form == 3:
            parts.append(words["brands"][query_brand[s] % len(words["brands"])])
        if form != 1:
            parts.append(words["attributes"][sess_attr[s]])
        if form != 0:
            parts.append(words["nouns"][sess_noun[s]])
        if form == 2:
            parts.insert(0, catalog_words.COLOURS[query_colour[s]])
        queries[s] = " ".join(parts)

    # Candidates: half from the intent category, a quarter popular, rest random.
    src = rng.random((S, K))
    in_cat = cat.start[sess_cat][:, None] + (rng.random((S, K)) * cat.count[sess_cat][:, None]).astype(int)
    popular = rng.choice(len(cat.ids), (S, K), p=_softmax(1.5 * cat.quality))
    uniform = rng.integers(0, len(cat.ids), (S, K))
    cand = np.where(src < 0.5, in_cat, np.where(src < 0.75, popular, uniform))
    cand = np.where(cat.count[sess_cat][:, None] > 0, cand, uniform)

    # True click model (shared with SimulatedData.true_click_logits).
    data = SimulatedData(
        None,
        None,
        None,
        cat.latent,
        user_latent,
        cfg,
        truth={
            "session_user": sess_user,
            "session_category": sess_cat,
            "session_offset": session_offset,
            "query_latent": q_latent,
            "propensity": propensity,
            "quality": cat.quality,
            "relative_log_price": np.log(cat.price)
            - np.log([catalog_words.BASE_PRICE[c] for c in cat.categories])[cat.cat],
        },
    )
    logit = data.true_click_logits(session_offset + np.arange(S), cand)
    qv = data.true_query_affinity(session_offset + np.arange(S), cand)
    attractiveness = _sigmoid(logit)
    # Logging ranker: Plackett-Luce over the true logits (a noisy view of
    # attractiveness) decides the positions, and logs its propensities.
    order = logging_policy.plackett_luce_sample(logit, cfg.logging_temperature, rng)
    marginals = logging_policy.plackett_luce_position_probabilities(logit, cfg.logging_temperature)
    marginals = np.take_along_axis(marginals, order[:, :, None], 1)  # items in logged order
    logged_propensity = marginals[:, np.arange(K), np.arange(K)]
    data.truth["logging_position_probabilities"] = marginals.astype(np.float32)
    cand = np.take_along_axis(cand, order, 1)
    attractiveness = np.take_along_axis(attractiveness, order, 1)
    qv = np.take_along_axis(qv, order, 1)
    position = np.broadcast_to(np.arange(1, K + 1), (S, K))
    examination = position.astype(float) ** -cfg.position_bias
    true_ctr = examination * attractiveness
    click = rng.random((S, K)) < true_ctr
    buy_p = _sigmoid(-1.0 + 0.6 * propensity[sess_user][:, None] + 1.0 * (qv - 0.5))
    purchase = click & (rng.random((S, K)) < buy_p)
    mean_extra_quantity = 0.4 * np.exp(0.3 * propensity[sess_user])
    quantity = 1 + rng.poisson(mean_extra_quantity)[:, None] * np.ones((1, K), int)
    value_if_clicked = buy_p * cat.price[cand] * (1 + mean_extra_quantity)[:, None]
    purchase_value = np.where(purchase, np.round(cat.price[cand] * quantity, 2), 0.0)
    # Graded relevance 0..3 from the query-item affinity alone.
    relevance = np.digitize(qv, [0.8, 2.0, 3.0]).astype(float)

    # Session times: uniform over the window, sorted.
    start = pd.Timestamp(cfg.start)
    offsets = np.sort(rng.random(S)) * cfg.days * 86400.0
    sess_time = start + pd.to_timedelta(np.round(offsets), unit="s")

    flat_user = np.repeat(sess_user, K)
    flat_item = cand.ravel()
    brand_names = cat.brand_names()
    impressions = pd.DataFrame(
        {
            "event_time": np.repeat(sess_time.to_numpy(), K),
            "session_id": np.repeat(session_offset + np.arange(S), K),
            "query": np.repeat(queries, K),
            "user_id": user_ids[flat_user],
            "user_segment": np.array(catalog_words.SEGMENTS, dtype=object)[segment_idx[flat_user]],
            "user_country": np.array(catalog_words.COUNTRIES, dtype=object)[country_idx[flat_user]],
            "user_tenure_days": tenure[flat_user],
            "user_orders_90d": orders_90d[flat_user].astype(float),
            "user_history": histories[flat_user],
            "item_id": cat.ids[flat_item],
            "item_title": cat.titles[flat_item],
            "item_category": np.array(cat.categories, dtype=object)[cat.cat[flat_item]],
            "item_brand": brand_names[flat_item],
            "item_price": cat.price[flat_item],
            "position": position.ravel().astype(float),
            "click": click.ravel().astype(np.int64),
            "purchase": purchase.ravel().astype(np.int64),
            "purchase_value": purchase_value.ravel(),
            "relevance": relevance.ravel(),
            "future_value": future_value[flat_user],
            "true_ctr": true_ctr.ravel(),
            "true_attractiveness": attractiveness.ravel(),
            "true_relevance_score": qv.ravel(),
            "true_value_probability": value_p[flat_user],
            "true_expected_value": expected_value[flat_user],
            "true_purchase_value_if_clicked": value_if_clicked.ravel(),
            "propensity": logged_propensity.ravel(),
        }
    )
    items = pd.DataFrame(
        {
            "item_id": cat.ids,
            "item_title": cat.titles,
            "item_category": np.array(cat.categories, dtype=object)[cat.cat],
            "item_brand": brand_names,
            "item_price": cat.price,
            "true_quality": cat.quality,
        }
    )
    user_table = pd.DataFrame(
        {
            "user_id": user_ids[active],
            "user_segment": np.array(catalog_words.SEGMENTS, dtype=object)[segment_idx[active]],
            "user_country": np.array(catalog_words.COUNTRIES, dtype=object)[country_idx[active]],
            "user_tenure_days": tenure[active],
            "user_orders_90d": orders_90d[active].astype(float),
            "user_history": histories[active],
            "future_value": future_value[active],
            "true_propensity": propensity[active],
            "true_value_probability": value_p[active],
            "true_expected_value": expected_value[active],
        }
    )
    data.impressions, data.items, data.users = impressions, items, user_table
    return data


def _softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def _sample_categories(rng, probs, n):
    """Draws `n` categories per row of `probs` ([rows, C]), vectorised."""
    cdf = np.cumsum(probs, axis=1)
    cdf[:, -1] = 1.0
    u = rng.random((probs.shape[0], n))
    return (u[:, :, None] > cdf[:, None, :]).sum(-1)


def _solve_intercept(z, slope, target_mean, iters=60):
    """Intercept b with mean(sigmoid(b + slope * z)) == target_mean (bisection)."""
    lo, hi = -20.0, 20.0
    for _ in range(iters):
        mid = (lo + hi) / 2
        if _sigmoid(mid + slope * z).mean() < target_mean:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2
