"""Checks of configuration dataclasses whose errors name the full key and what it allows.

Every config dataclass of tfrec (`JobConfig` and its sections, `ModelConfig`,
`TextConfig`, `SimulatorConfig`) calls `check_config` from `__post_init__`:
the field annotations give the types, `choices` the allowed values of
enumerated keys and `ranges` the allowed numbers. Every message starts with
the dotted key, as in the YAML file:

```text
training.batch_size: expected an integer, got 'abc'
model.multitask: unknown 'mmo'; one of 'shared_bottom', 'mmoe', 'ple'
training.learning_rate: must be > 0, got 0
training.value_holdout_fraction: must be in [0, 1), got 1.5
config: unknown key(s) ['trainig']; known keys are [...]
```

Example:

```python
@dataclasses.dataclass
class Section:
    mode: str = "fast"
    rate: float = 0.1

    def __post_init__(self):
        check_config(self, "section", choices={"mode": ("fast", "slow")}, ranges={"rate": "> 0"})
```

A float field takes a number written as a string too (PyYAML reads `1e-3`,
an exponent without a dot, as the string `'1e-3'`); a string field takes a
path object or a YAML date (`cutoff: 2024-03-31`) as its text.

This module imports neither TensorFlow nor Keras at import time; checking a
bare keras-hub preset name imports keras-hub (once) to list its presets.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import numbers
import os
import types
import typing
from typing import Any

import yaml

__all__ = ["check_bert_preset", "check_choice", "check_config", "check_range", "from_dict"]


def from_dict(cls, config: dict[str, Any] | None, where: str):
    """`cls(**config)`; `None` is the defaults; unknown keys are errors naming them and `where`."""
    if config is None:
        return cls()
    if not isinstance(config, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(config).__name__}")  # noqa: TRY004  (a config error)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known keys are {sorted(known)}")
    return cls(**config)


def check_choice(key: str, value, allowed, described: str | None = None) -> None:
    """Raises unless `value` is in `allowed`; the message lists them (or says `described`)."""
    if value not in allowed:
        options = f": {described}" if described else " " + ", ".join(repr(a) for a in allowed)
        raise ValueError(f"{key}: unknown {value!r}; one of{options}")


def check_range(key: str, value, allowed: str) -> None:
    """Raises unless the number `value` lies in `allowed`: `"> 0"`, `">= 1"`, `"[0, 1)"`, `"(0, 10]"`.

    NaN lies in no range. A list is checked element by element (`key[i]`), a
    mapping value by value (`key.name`).
    """
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_range(f"{key}[{i}]", item, allowed)
        return
    if isinstance(value, dict):
        for name, item in value.items():
            check_range(f"{key}.{name}", item, allowed)
        return
    spec = allowed.strip()
    if spec[0] in "[(":
        low, high = (float(x) for x in spec[1:-1].split(","))
        ok = (value >= low if spec[0] == "[" else value > low) and (value <= high if spec[-1] == "]" else value < high)
        text = f"in {spec}"
    else:
        op, bound = spec.split()
        ok = {
            ">": value > float(bound),
            ">=": value >= float(bound),
            "<": value < float(bound),
            "<=": value <= float(bound),
        }[op]
        text = spec
    if not ok:
        raise ValueError(f"{key}: must be {text}, got {value!r}")


def check_config(
    config, where: str, *, choices: dict[str, Any] | None = None, ranges: dict[str, str] | None = None
) -> None:
    """Checks the fields of the dataclass instance `config`, section name `where`.

    Types follow the annotations (a float field's value written as a string
    is converted; see the module docstring). Then each `choices[name]` is
    checked: a collection of allowed values, or a function `(key, value)` that
    raises; and each `ranges[name]` (see `check_range`). `None` is checked
    against neither where the annotation allows it.
    """
    # mypy does not see a class as Hashable (python/mypy#11470), though every class is.
    hints = _type_hints(type(config))  # type: ignore[arg-type]
    for field in dataclasses.fields(config):
        key = f"{where}.{field.name}"
        setattr(config, field.name, _typed(key, getattr(config, field.name), hints[field.name]))
    for name, allowed in (choices or {}).items():
        value = getattr(config, name)
        if value is None and type(None) in typing.get_args(hints[name]):
            continue
        if callable(allowed):
            allowed(f"{where}.{name}", value)
        else:
            check_choice(f"{where}.{name}", value, allowed)
    for name, allowed in (ranges or {}).items():
        value = getattr(config, name)
        if value is not None:
            check_range(f"{where}.{name}", value, allowed)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


_NAMES = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "a list",
    dict: "a mapping",
}


def _describe(tp) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        parts = [_describe(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(parts) + (" or None" if type(None) in typing.get_args(tp) else "")
    if origin is list:
        (item,) = typing.get_args(tp) or (Any,)
        return "a list" + ("" if item is Any else f" of {_describe(item).split(' ', 1)[-1]}s")
    if origin is dict:
        return "a mapping"
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return f"a mapping ({tp.__name__})"
    return _NAMES.get(tp, getattr(tp, "__name__", str(tp)))


def _typed(key: str, value, tp):
    """`value` if it has type `tp` (or converted as the module docstring says); else raises."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return _typed(key, value, arg)
            except ValueError:
                pass
        raise ValueError(f"{key}: expected {_describe(tp)}, got {value!r}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{key}: expected {_describe(tp)}, got {value!r}")
        (item,) = typing.get_args(tp) or (Any,)
        return [_typed(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{key}: expected {_describe(tp)}, got {value!r}")
        key_type, value_type = typing.get_args(tp) or (Any, Any)
        return {_typed(f"{key} key", k, key_type): _typed(f"{key}.{k}", v, value_type) for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
    elif tp is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        if isinstance(value, (datetime.date, datetime.datetime)):
            return str(value)
    elif isinstance(tp, type):
        if isinstance(value, tp):
            return value
    else:
        return value
    raise ValueError(f"{key}: expected {_describe(tp)}, got {value!r}")


BERT_PRESET_CHOICES = (
    "None (from-scratch BERT), 'minilm', a keras-hub preset name (e.g. 'bert_tiny_en_uncased'), "
    "or a local BERT directory"
)


def check_bert_preset(key: str, value) -> None:
    """Raises unless `value` names a BERT `TextConfig.preset` can load.

    Valid: None, `"minilm"`, an existing directory, a name in
    `keras_hub.models.BertBackbone.presets` (keras-hub is imported only to
    check such a name; nothing is downloaded), and, unchecked, a path with a
    folder separator or a `scheme://` handle (`hf://...`): a model trained
    from a directory still loads where that directory is gone.
    """
    if value is None or value == "minilm":
        return
    if (
        isinstance(value, str)
        and value
        and (
            os.path.isdir(value)
            or "://" in value
            or os.sep in value
            or "/" in value
            or value in (_bert_presets() or {value})  # no keras-hub to ask: not checked
        )
    ):
        return
    raise ValueError(f"{key}: unknown {value!r}; one of: {BERT_PRESET_CHOICES}")


@functools.lru_cache(maxsize=1)
def _bert_presets() -> frozenset | None:
    """keras-hub's BERT preset names; None where keras-hub cannot be imported (names are then not checked)."""
    try:
        import keras_hub
    except ImportError:
        return None
    return frozenset(keras_hub.models.BertBackbone.presets)


def read_yaml(path: str | os.PathLike, what: str = "config", error: type[Exception] = ValueError) -> Any:
    """The parsed YAML file at `path`; errors name `what` and the path.

    A missing file is `FileNotFoundError("<what> file not found: <path>")`,
    invalid YAML is `error("<what> <path> is not valid YAML: ...")`.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"{what} file not found: {path}")
    with open(path, encoding="utf-8") as f:
        try:
            return yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise error(f"{what} {path} is not valid YAML: {e}") from e
