"""What a model built for a warm start takes over from the previous model: vocabularies and statistics.

`build_model(..., previous=model)` builds a model for new training rows that
can start from `model`'s weights (`tfrec.training.warm_start` copies them):

* every id and category vocabulary grows: the previous vocabulary first, in
  its order, then the ids of the new rows it lacks (most frequent first, as a
  fresh vocabulary orders them), up to `model.max_vocabulary` in all. A
  previous id is never dropped, even past `max_vocabulary`; the OOV buckets
  come first in each table, so every old id keeps its row index;
* the numeric scaling statistics (mean, standard deviation, log scaling) of
  the previous run are kept, not refitted: the first layers of the towers
  learnt on inputs scaled that way, and new statistics would move every input
  the carried weights expect. (Refit them with a from-scratch run when a
  column's distribution has drifted far.)
* a from-scratch BERT keeps its WordPiece vocabulary as it is: the token
  embeddings and everything above them belong to those tokens;
* the lexical match features keep the previous catalog's term table and IDF
  (their inputs to the ranking heads stay the same; terms only new items
  have count as unknown in BM25 until a from-scratch run).

The item sampling probabilities of the logQ correction are not taken over:
they describe the batches of the run that trains, so `build_model` computes
them from the new rows (they change the training loss, not the model's scores).

Example:

```python
state = CarriedState.of(model)                                     # a trained tfrec model
state.vocabularies["item id"][:3]                                  # its item ids, in their order
grow_vocabulary(["i1", "i2"], ["i3", "i1", "i4"], max_size=10)     # ['i1', 'i2', 'i3', 'i4']
# build_model(schema, config, new_rows, previous=model): the model to warm-start from `model`
```
"""

from __future__ import annotations

import dataclasses

import keras

from tfrec.layers.id_embedding import IdEmbedding
from tfrec.layers.lexical_match import LexicalMatch


def grow_vocabulary(previous, candidates, max_size: int) -> list[str]:
    """`previous` in its order, then the `candidates` it lacks, in theirs, up to `max_size` ids in all.

    The previous ids are all kept, also when they alone reach `max_size`.
    """
    previous = [str(v) for v in previous]
    known = set(previous)
    room = max(int(max_size) - len(previous), 0)
    added = [v for v in dict.fromkeys(str(c) for c in candidates) if v not in known][:room]
    return previous + added


def category_role(side: str, column: str) -> str:
    """The role name of a categorical column's id table: `segment (user category)`."""
    return f"{column} ({side} category)"


def _intent_vocabulary(model):
    """`(category column, categories)` of the model's `QueryIntentTask`, or None."""
    task = getattr(model, "intent_task", None)
    return None if task is None else (task.category_column, list(task.vocabulary))


def _encoders(model):
    """`(user_encoder, item_encoder, title_encoder)` of a tfrec model (None where it has none)."""
    query_tower = getattr(model, "query_tower", None)
    item_tower = getattr(model, "item_tower", None)
    user = getattr(model, "user_encoder", None) or getattr(query_tower, "user_encoder", None)
    item = getattr(item_tower, "item_encoder", None)
    title = getattr(item_tower, "title_encoder", None)
    return user, item, title


def id_tables(model) -> dict[str, IdEmbedding]:
    """The model's `IdEmbedding`s by role: `user id`, `user history`, `item id`, `<column> (user category)`,
    `<column> (item category)` and `item title words` (the bag-of-words title encoder).

    A history that shares the item id table is listed once, as `item id`.
    """
    user, item, title = _encoders(model)
    tables: dict[str, IdEmbedding] = {}
    if user is not None:
        if user.id_embedding is not None:
            tables["user id"] = user.id_embedding
        if user.history_embedding is not None and not user.shares_history_embedding:
            tables["user history"] = user.history_embedding
        for column, layer in user.categorical_embeddings.items():
            tables[category_role("user", column)] = layer
    if item is not None:
        if item.id_embedding is not None:
            tables["item id"] = item.id_embedding
        for column, layer in item.categorical_embeddings.items():
            tables[category_role("item", column)] = layer
    if title is not None:
        tables["item title words"] = title.words
    return tables


@dataclasses.dataclass
class CarriedState:
    """The vocabularies and statistics of a previous model that a warm-started build takes over.

    Attributes:
        vocabularies: `{role: ids}` of every id table (`id_tables`).
        num_oov: `{role: OOV buckets}` of every id table.
        numeric: `{"user" | "item": (columns, {"mean", "std", "log_scale"})}`.
        text_vocabulary: the WordPiece vocabulary of the BERT, or None.
        lexical_match: the previous `LexicalMatch` (term table and IDF), or None.
        intent_vocabulary: `(column, categories)` of the previous query-intent
            head, kept as they are (its classes are its weights), or None.
    """

    vocabularies: dict[str, list[str]]
    num_oov: dict[str, int]
    numeric: dict[str, tuple[list[str], dict]]
    text_vocabulary: list[str] | None = None
    lexical_match: LexicalMatch | None = None
    intent_vocabulary: tuple[str, list[str]] | None = None

    @classmethod
    def of(cls, model) -> CarriedState:
        """The state of the trained tfrec model `model` (a `TwoTowerModel` or `UserValueModel`)."""
        tables = id_tables(model)
        numeric = {}
        user, item, _ = _encoders(model)
        for side, encoder in (("user", user), ("item", item)):
            if encoder is not None and encoder.numeric is not None:
                layer = encoder.numeric
                stats = {"mean": list(layer.mean), "std": list(layer.std), "log_scale": list(layer.log_scale)}
                numeric[side] = (list(encoder.numeric_columns), stats)
        encoder = getattr(model, "text_encoder", None)
        return cls(
            vocabularies={role: list(t.vocabulary) for role, t in tables.items()},
            num_oov={role: t.num_oov for role, t in tables.items()},
            numeric=numeric,
            text_vocabulary=list(encoder.tokenizer.get_vocabulary()) if encoder is not None else None,
            lexical_match=getattr(model, "lexical_match", None),
            intent_vocabulary=_intent_vocabulary(model),
        )

    def vocabulary(self, role: str, candidates, max_size: int) -> list[str]:
        """The grown vocabulary of `role` (`grow_vocabulary`); `candidates[:max_size]` for a role that is new."""
        previous = self.vocabularies.get(role)
        if previous is None:
            return list(candidates)[:max_size]
        return grow_vocabulary(previous, candidates, max_size)

    def numeric_stats(self, side: str, columns) -> dict | None:
        """The previous scaling statistics of `side`'s numeric `columns`; None where the previous model had none.

        Raises when the previous model scaled other columns: the statistics
        are kept, so the columns must be the same.
        """
        if side not in self.numeric:
            return None
        previous_columns, stats = self.numeric[side]
        if list(columns) != previous_columns:
            raise ValueError(
                f"warm start: schema.{side}_numeric: the previous model scales the {side} numeric columns "
                f"{previous_columns}, this schema has {list(columns)}; the numeric statistics are kept from the "
                "previous run, so the columns must be the same (or train from scratch)"
            )
        return {k: list(v) for k, v in stats.items()}

    def lexical_copy(self) -> LexicalMatch | None:
        """A new `LexicalMatch` with the previous term table and IDF, or None."""
        previous = self.lexical_match
        if previous is None:
            return None
        layer = LexicalMatch.from_config(previous.get_config())
        layer.build()
        for name in ("term_ids", "idf", "mean_length"):
            getattr(layer, name).assign(keras.ops.convert_to_numpy(getattr(previous, name)))
        return layer
