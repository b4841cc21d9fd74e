"""Declarative feature schema: which of the user's columns plays which role.

A `FeatureSchema` maps column names in the user's tables to the roles that
`tfrec` models understand (query text, user id, item id, labels, ...). It is
built in Python or loaded from YAML, and it drives validation, the tf.data
input pipeline, the model towers and the serving signatures.

Example:

```python
schema = FeatureSchema(
    query_text="search_query",
    user_id="customer_id",
    item_id="sku",
    item_text="title",
    item_categorical=["category", "brand"],
    item_price="price",
    click_label="clicked",
    event_time="ts",
)
schema.to_yaml("schema.yaml")
same = FeatureSchema.from_yaml("schema.yaml")
```

The equivalent YAML file:

```yaml
query_text: search_query
user_id: customer_id
item_id: sku
item_text: title
item_categorical: [category, brand]
item_price: price
click_label: clicked
event_time: ts
```

Two roles weight the training losses instead of feeding the model:
`sample_weight` (a finite float >= 0 per row; each task's loss is the
weighted mean over the batch) and `propensity` (the probability in (0, 1]
with which the logging policy showed the row; `ModelConfig.weight_by_inverse_propensity`
divides the weight by it, and off-policy evaluation reads it).
"""

from __future__ import annotations

import dataclasses
import enum
import os
from typing import Any

import yaml


class Role(str, enum.Enum):
    """The part a column plays in a search/recommendation model."""

    QUERY_TEXT = "query_text"
    USER_ID = "user_id"
    USER_CATEGORICAL = "user_categorical"
    USER_NUMERIC = "user_numeric"
    USER_HISTORY = "user_history"
    ITEM_ID = "item_id"
    ITEM_TEXT = "item_text"
    ITEM_CATEGORICAL = "item_categorical"
    ITEM_NUMERIC = "item_numeric"
    ITEM_PRICE = "item_price"
    CLICK_LABEL = "click_label"
    VALUE_LABEL = "value_label"
    RELEVANCE_LABEL = "relevance_label"
    EVENT_TIME = "event_time"
    POSITION = "position"
    SAMPLE_WEIGHT = "sample_weight"
    PROPENSITY = "propensity"


class Kind(str, enum.Enum):
    """How a column's values are stored and checked."""

    TEXT = "text"  # free text, non-empty after stripping whitespace
    ID = "id"  # identifier; kept as a string, hashed by the model
    CATEGORICAL = "categorical"  # small vocabulary; missing -> OOV bucket
    NUMERIC = "numeric"  # float
    ID_LIST = "id_list"  # list of item ids (user history)
    BINARY = "binary"  # 0/1 label
    NONNEGATIVE = "nonnegative"  # float >= 0 (price, value)
    BOUNDED = "bounded"  # float within [min, max] (graded relevance)
    TIME = "time"  # timestamp
    WEIGHT = "weight"  # finite float >= 0 (per-row loss weight)
    PROPENSITY = "propensity"  # float in (0, 1] (logging-policy probability)


ROLE_KIND = {
    Role.QUERY_TEXT: Kind.TEXT,
    Role.USER_ID: Kind.ID,
    Role.USER_CATEGORICAL: Kind.CATEGORICAL,
    Role.USER_NUMERIC: Kind.NUMERIC,
    Role.USER_HISTORY: Kind.ID_LIST,
    Role.ITEM_ID: Kind.ID,
    Role.ITEM_TEXT: Kind.TEXT,
    Role.ITEM_CATEGORICAL: Kind.CATEGORICAL,
    Role.ITEM_NUMERIC: Kind.NUMERIC,
    Role.ITEM_PRICE: Kind.NONNEGATIVE,
    Role.CLICK_LABEL: Kind.BINARY,
    Role.VALUE_LABEL: Kind.NONNEGATIVE,
    Role.RELEVANCE_LABEL: Kind.BOUNDED,
    Role.EVENT_TIME: Kind.TIME,
    Role.POSITION: Kind.NUMERIC,
    Role.SAMPLE_WEIGHT: Kind.WEIGHT,
    Role.PROPENSITY: Kind.PROPENSITY,
}

# Roles whose column may hold several names.
LIST_ROLES = (
    Role.USER_CATEGORICAL,
    Role.USER_NUMERIC,
    Role.ITEM_CATEGORICAL,
    Role.ITEM_NUMERIC,
)

# Missing values in these kinds are meaningful ("unknown") and are kept:
# categoricals map to the OOV bucket, numerics are imputed and flagged by the
# model's normalisation layer, an empty history is an empty list.
NULLABLE_KINDS = (Kind.CATEGORICAL, Kind.NUMERIC, Kind.ID_LIST)

USER_ROLES = (
    Role.QUERY_TEXT,
    Role.USER_ID,
    Role.USER_CATEGORICAL,
    Role.USER_NUMERIC,
    Role.USER_HISTORY,
)
ITEM_ROLES = (
    Role.ITEM_ID,
    Role.ITEM_TEXT,
    Role.ITEM_CATEGORICAL,
    Role.ITEM_NUMERIC,
    Role.ITEM_PRICE,
)
LABEL_ROLES = (Role.CLICK_LABEL, Role.VALUE_LABEL, Role.RELEVANCE_LABEL)
# Per-row weights of the training losses: not model inputs, they travel with the labels.
WEIGHT_ROLES = (Role.SAMPLE_WEIGHT, Role.PROPENSITY)


def is_relevant(relevance, relevance_range):
    """Whether a graded relevance counts as a positive: the upper half of `relevance_range` (the one threshold).

    Works on numpy arrays and tensors alike, e.g. `is_relevant(np.array([0, 2, 3]), (0, 3))`
    is `[False, True, True]`.
    """
    low, high = (float(v) for v in relevance_range)
    return relevance >= low + 0.5 * (high - low)


class SchemaError(ValueError):
    """A schema that is malformed, or a table that does not fit a schema."""


@dataclasses.dataclass(frozen=True)
class ColumnSpec:
    """One column of a schema: its name in the user's table, role and kind."""

    name: str
    role: Role
    kind: Kind
    nullable: bool


@dataclasses.dataclass
class FeatureSchema:
    """Maps the columns of a user's tables to roles.

    Every field names a column (or a list of columns for the `*_categorical`
    and `*_numeric` roles); `None` or an empty list means the role is absent.

    Args:
        query_text: search query text (the query tower reads it).
        user_id: user identifier (hashed by the model; unseen ids go to OOV).
        user_categorical: user attributes with a small vocabulary.
        user_numeric: numeric user attributes.
        user_history: list of the user's recent item ids.
        item_id: item identifier.
        item_text: item title or description.
        item_categorical: item attributes such as category and brand.
        item_numeric: numeric item attributes other than price.
        item_price: item price (non-negative).
        click_label: 0/1 click label.
        value_label: non-negative purchase value or user lifetime value.
        relevance_label: graded relevance within `relevance_range`.
        relevance_range: inclusive `(min, max)` of the graded relevance.
        event_time: event timestamp, used for time-based splits.
        position: 1-based display position of a logged impression. The CTR
            head reads it in training to separate position bias from
            relevance; serving scores as if at position 1.
        sample_weight: per-row weight of every training loss (finite,
            >= 0; 0 leaves the row out). Each task's loss is the weighted
            mean `sum(w * loss) / sum(w)` over the batch's rows.
        propensity: the probability in (0, 1] that the logging policy
            showed the row (the item at its position). With
            `ModelConfig.weight_by_inverse_propensity` the training weight
            is `sample_weight / propensity` (inverse propensity weighting);
            off-policy evaluation reads it too.
        history_length: how many history items the model reads.
    """

    query_text: str | None = None
    user_id: str | None = None
    user_categorical: list[str] = dataclasses.field(default_factory=list)
    user_numeric: list[str] = dataclasses.field(default_factory=list)
    user_history: str | None = None
    item_id: str | None = None
    item_text: str | None = None
    item_categorical: list[str] = dataclasses.field(default_factory=list)
    item_numeric: list[str] = dataclasses.field(default_factory=list)
    item_price: str | None = None
    click_label: str | None = None
    value_label: str | None = None
    relevance_label: str | None = None
    relevance_range: tuple[float, float] = (0.0, 3.0)
    event_time: str | None = None
    position: str | None = None
    sample_weight: str | None = None
    propensity: str | None = None
    history_length: int = 20

    def __post_init__(self):
        for role in LIST_ROLES:
            value = getattr(self, role.value)
            if value is None:
                value = []
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
                raise SchemaError(f"schema field '{role.value}': expected a list of column names, got {value!r}")
            object.__setattr__(self, role.value, list(value))
        for role in Role:
            if role in LIST_ROLES:
                continue
            value = getattr(self, role.value)
            if value is not None and (not isinstance(value, str) or not value):
                raise SchemaError(
                    f"schema field '{role.value}': expected a column name (non-empty string) or null, got {value!r}"
                )
        low, high = (float(v) for v in self.relevance_range)
        if not low < high:
            raise SchemaError(f"schema field 'relevance_range': min {low} must be below max {high}")
        self.relevance_range = (low, high)
        if int(self.history_length) < 1:
            raise SchemaError(f"schema field 'history_length': must be >= 1, got {self.history_length!r}")
        self.history_length = int(self.history_length)
        seen: dict[str, str] = {}
        for spec in self.columns():
            if spec.name in seen:
                raise SchemaError(
                    f"column '{spec.name}' is mapped to two roles: '{seen[spec.name]}' and '{spec.role.value}'"
                )
            seen[spec.name] = spec.role.value
        if not seen:
            raise SchemaError("schema maps no columns: give at least one role")

    # ------------------------------------------------------------------ views
    def columns(self) -> list[ColumnSpec]:
        """All mapped columns, in role order."""
        specs = []
        for role in Role:
            value = getattr(self, role.value)
            names = value if role in LIST_ROLES else ([value] if value else [])
            kind = ROLE_KIND[role]
            for name in names:
                specs.append(ColumnSpec(name, role, kind, nullable=kind in NULLABLE_KINDS))
        return specs

    def column_names(self, roles=None) -> list[str]:
        """Names of the mapped columns, optionally only those of `roles`."""
        roles = None if roles is None else {Role(r) for r in roles}
        return [c.name for c in self.columns() if roles is None or c.role in roles]

    def has(self, role: Role | str) -> bool:
        """Whether the schema maps at least one column to `role`."""
        return bool(getattr(self, Role(role).value))

    @property
    def feature_names(self) -> list[str]:
        """Columns the model reads as inputs (everything but labels and time)."""
        return self.column_names(USER_ROLES + ITEM_ROLES)

    @property
    def label_names(self) -> list[str]:
        return self.column_names(LABEL_ROLES)

    @property
    def weight_names(self) -> list[str]:
        """Columns that weight the losses (`sample_weight`, `propensity`)."""
        return self.column_names(WEIGHT_ROLES)

    @property
    def user_feature_names(self) -> list[str]:
        return self.column_names(USER_ROLES)

    @property
    def item_feature_names(self) -> list[str]:
        return self.column_names(ITEM_ROLES)

    def restrict(self, columns) -> FeatureSchema:
        """The same mapping keeping only `columns` (e.g. those a table has)."""
        keep = set(columns)
        changes: dict[str, Any] = {}
        for role in Role:
            value = getattr(self, role.value)
            if role in LIST_ROLES:
                changes[role.value] = [c for c in value if c in keep]
            elif value is not None and value not in keep:
                changes[role.value] = None
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None or value == []:
                continue
            if field.name == "relevance_range":
                if self.relevance_label is None:
                    continue
                value = list(value)
            if field.name == "history_length" and self.user_history is None:
                continue
            out[field.name] = value
        return out

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> FeatureSchema:
        if not isinstance(config, dict):
            raise SchemaError(f"schema must be a mapping of role -> column, got {type(config).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise SchemaError(f"unknown schema field(s) {unknown}; known fields are {sorted(known)}")
        config = dict(config)
        if "relevance_range" in config:
            rng = config["relevance_range"]
            if not isinstance(rng, (list, tuple)) or len(rng) != 2:
                raise SchemaError(f"schema field 'relevance_range': expected [min, max], got {rng!r}")
            config["relevance_range"] = tuple(rng)
        return cls(**config)

    def to_yaml(self, path: str | os.PathLike | None = None) -> str:
        text = yaml.safe_dump(self.to_dict(), sort_keys=False)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    @classmethod
    def from_yaml(cls, path_or_text: str | os.PathLike) -> FeatureSchema:
        """Loads a schema from a YAML file path or a YAML string."""
        text = str(path_or_text)
        if os.path.exists(text):
            with open(text, encoding="utf-8") as f:
                text = f.read()
        elif "\n" not in text and text.endswith((".yaml", ".yml")):
            raise SchemaError(f"schema file not found: {text}")
        try:
            config = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SchemaError(f"schema is not valid YAML: {e}") from e
        return cls.from_dict(config or {})
