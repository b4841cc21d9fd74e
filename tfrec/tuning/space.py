"""The search space of `tfrec tune`: YAML over dotted keys of the job config.

Each key is a dotted path into the job YAML (`training.learning_rate`,
`model.text.num_layers`, `model.loss_weights.ctr`); each value says how the
tuner draws it:

```yaml
training.learning_rate: {type: float, min: 1.0e-4, max: 1.0e-2, sampling: log}
training.weight_decay: {type: float, min: 0.0, max: 0.01, step: 0.001}
model.embedding_dim: {type: choice, values: [32, 64]}
model.tower_units: {type: choice, values: [[64], [128, 64]]}
model.text.num_layers: {type: int, min: 1, max: 3}
model.logq_correction: {type: bool}
```

* `float`: `min`, `max`, optional `step` and `sampling` (`linear`, `log`
  or `reverse_log`; `log` needs `min > 0`);
* `int`: `min`, `max`, optional `step` (default 1) and `sampling`
  (`linear` or `log`);
* `choice`: `values`, a list of distinct values (numbers, strings, booleans,
  `null`, or lists such as layer sizes);
* `bool`: no options (true or false).

`SearchSpace.validate(job)` checks every key against the job config (an
unknown key is an error naming it, with the keys its section has) and every
value the tuner can draw (`min`, `max`, each choice) with the job config's
own checks (`JobConfig.from_dict`), so a trial cannot fail on a value the
config rejects alone. Every error starts with the space key.

Example:

```python
space = SearchSpace.from_dict({"training.learning_rate": {"type": "float", "min": 1e-4, "max": 1e-2}})
space.validate({"training": {"epochs": 1}})
apply_values({"training": {"epochs": 1}}, {"training.learning_rate": 3e-3})
# {'training': {'epochs': 1, 'learning_rate': 0.003}}
```

This module imports neither TensorFlow nor KerasTuner at import time
(`SearchSpace.hyperparameters` imports KerasTuner).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import math
import numbers
import os
from typing import Any

import yaml

from tfrec.config_validation import read_yaml

__all__ = ["KINDS", "Param", "SearchSpace", "SearchSpaceError", "apply_values", "get_path"]

KINDS = ("float", "int", "choice", "bool")
_OPTIONS = {
    "float": {"min", "max", "step", "sampling"},
    "int": {"min", "max", "step", "sampling"},
    "choice": {"values"},
    "bool": set(),
}
_SAMPLINGS = {"float": ("linear", "log", "reverse_log"), "int": ("linear", "log")}
# Keys the tuner sets itself.
_RESERVED = {"output_dir": "each trial's run directory is set by the tuner (under --output-dir)"}


class SearchSpaceError(ValueError):
    """An invalid search space; the message starts with the space key."""


@dataclasses.dataclass(frozen=True)
class Param:
    """One tuned config key.

    Args:
        key: the dotted config key, e.g. `training.learning_rate`.
        kind: `float`, `int`, `choice` or `bool`.
        low, high: the range of `float` and `int`.
        step: the grid step of `float`/`int` (None: continuous float, 1 for int).
        sampling: `linear`, `log` or `reverse_log` (floats).
        values: the values of a `choice`.
    """

    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    sampling: str = "linear"
    values: tuple = ()

    @property
    def labelled(self) -> bool:
        """A `choice` KerasTuner cannot hold as it is (mixed types, lists, null): drawn by its YAML label."""
        if self.kind != "choice":
            return False
        types = {type(v) for v in self.values}
        return len(types) > 1 or not types <= {int, float, str, bool}

    @property
    def labels(self) -> list:
        """What KerasTuner draws for a `choice`: the values, or their YAML labels where `labelled`."""
        return [_label(v) for v in self.values] if self.labelled else list(self.values)

    def candidates(self) -> list:
        """The values the tuner can draw that are checked against the config: both ends, or every choice."""
        if self.kind == "bool":
            return [False, True]
        if self.kind == "choice":
            return list(self.values)
        low, high = float(self.low or 0), float(self.high or 0)  # set for float and int
        return [int(low), int(high)] if self.kind == "int" else [low, high]

    def value(self, drawn):
        """The config value of what KerasTuner drew (a choice label back to its value, numpy numbers to Python)."""
        if self.labelled:
            return copy.deepcopy(self.values[self.labels.index(drawn)])
        return plain(drawn)

    def to_dict(self) -> dict[str, Any]:
        """The YAML form of this key's entry."""
        if self.kind == "bool":
            return {"type": "bool"}
        if self.kind == "choice":
            return {"type": "choice", "values": list(self.values)}
        out: dict[str, Any] = {"type": self.kind, "min": self.low, "max": self.high}
        if self.step is not None:
            out["step"] = self.step
        if self.sampling != "linear":
            out["sampling"] = self.sampling
        return out


def plain(value):
    """`value` with numpy scalars as Python bool/int/float (YAML and JSON write those)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "item") and not isinstance(value, (list, tuple, dict)):
        value = value.item()
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return value


def _label(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _number(key: str, name: str, value, kind: str) -> float:
    """`value` of option `name` as a number of `kind` (a float may be written as a string: PyYAML reads `1e-4` so)."""
    if kind == "int":
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
        raise SearchSpaceError(f"{key}: {name} must be an integer for type int, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise SearchSpaceError(f"{key}: {name} must be a finite number, got {value!r}")


def _parse(key, spec) -> Param:
    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        raise SearchSpaceError(f"{key!r}: a space key must be a dotted config key such as 'training.learning_rate'")
    if not isinstance(spec, dict):
        raise SearchSpaceError(f"{key}: expected a mapping such as {{type: float, min: ..., max: ...}}, got {spec!r}")
    kind = spec.get("type")
    if kind == "boolean":
        kind = "bool"
    if kind not in KINDS:
        raise SearchSpaceError(f"{key}.type: unknown {kind!r}; one of {', '.join(repr(k) for k in KINDS)}")
    unknown = sorted(set(spec) - _OPTIONS[kind] - {"type"})
    if unknown:
        allowed = sorted(_OPTIONS[kind]) or "none"
        raise SearchSpaceError(f"{key}: unknown option(s) {unknown} for type {kind}; allowed: {allowed}")
    if kind == "bool":
        return Param(key, "bool")
    if kind == "choice":
        values = spec.get("values")
        if not isinstance(values, list) or not values:
            raise SearchSpaceError(f"{key}.values: expected a non-empty list, got {values!r}")
        labels = [_label(v) for v in values]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise SearchSpaceError(f"{key}.values: duplicate value(s) {duplicates}")
        return Param(key, "choice", values=tuple(values))
    for name in ("min", "max"):
        if name not in spec:
            raise SearchSpaceError(f"{key}: type {kind} needs '{name}'")
    low, high = _number(key, "min", spec["min"], kind), _number(key, "max", spec["max"], kind)
    if low >= high:
        raise SearchSpaceError(f"{key}: min ({low}) must be below max ({high}); a single value needs no tuning")
    step = spec.get("step")
    if step is not None:
        step = _number(key, "step", step, kind)
        if step <= 0:
            raise SearchSpaceError(f"{key}: step must be > 0, got {step}")
    sampling = spec.get("sampling", "linear")
    if sampling not in _SAMPLINGS[kind]:
        raise SearchSpaceError(
            f"{key}.sampling: unknown {sampling!r}; one of {', '.join(repr(s) for s in _SAMPLINGS[kind])}"
        )
    if sampling != "linear" and low <= 0:
        raise SearchSpaceError(f"{key}: sampling {sampling} needs min > 0, got {low}")
    return Param(key, kind, low=low, high=high, step=step, sampling=sampling)


def get_path(config: dict, key: str):
    """The value at the dotted `key` of the nested mapping `config` (KeyError naming the missing part)."""
    node: Any = config
    parts = key.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(".".join(parts[: i + 1]))
        node = node[part]
    return node


def _set_path(config: dict, key: str, value) -> None:
    node = config
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def apply_values(config: dict, values: dict) -> dict:
    """A deep copy of the job mapping `config` with `values` (`{dotted key: value}`) set; sections are made as needed.

    Example: `apply_values({}, {"model.text.num_layers": 2})` is `{"model": {"text": {"num_layers": 2}}}`.
    """
    out = copy.deepcopy(config or {})
    for key, value in values.items():
        _set_path(out, key, copy.deepcopy(value))
    return out


@dataclasses.dataclass
class SearchSpace:
    """The tuned keys, in the order of the YAML file (see the module docstring).

    Args:
        params: one `Param` per tuned key.
    """

    params: list[Param]

    @classmethod
    def from_dict(cls, space) -> SearchSpace:
        """Parses `{dotted key: {type: ..., ...}}`; errors name the key."""
        if not isinstance(space, dict) or not space:
            raise SearchSpaceError(
                "search space: expected a mapping of config keys to ranges, e.g. "
                "{training.learning_rate: {type: float, min: 1.0e-4, max: 1.0e-2, sampling: log}}"
            )
        return cls([_parse(key, spec) for key, spec in space.items()])

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> SearchSpace:
        return cls.from_dict(read_yaml(path, "search space", SearchSpaceError))

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.params]

    def param(self, key: str) -> Param:
        for p in self.params:
            if p.key == key:
                return p
        raise KeyError(key)

    def to_dict(self) -> dict[str, dict]:
        return {p.key: p.to_dict() for p in self.params}

    def validate(self, job: dict, reserved: dict[str, str] | None = None) -> None:
        """Checks every key against the job mapping `job` and every drawable value with `JobConfig.from_dict`.

        `reserved` maps further keys that may not be tuned to the reason
        (e.g. `training.epochs` under Hyperband, whose budget sets it).
        """
        from tfrec.jobs.config import JobConfig

        try:
            full = JobConfig.from_dict(job).to_dict()
        except ValueError as e:
            raise ValueError(f"job config: {e}") from e
        for p in self.params:
            why = {**_RESERVED, **(reserved or {})}.get(p.key)
            if why:
                raise SearchSpaceError(f"{p.key}: cannot be tuned: {why}")
            _check_key(full, p.key)
            for value in p.candidates():
                try:
                    JobConfig.from_dict(apply_values(job, {p.key: value}))
                except ValueError as e:
                    raise SearchSpaceError(f"{p.key}: the job config rejects {value!r}: {e}") from e

    def hyperparameters(self):
        """The space as `keras_tuner.HyperParameters`, one entry per key (named by the key)."""
        import keras_tuner

        hp = keras_tuner.HyperParameters()
        for p in self.params:
            if p.kind == "bool":
                hp.Boolean(p.key)
            elif p.kind == "choice":
                hp.Choice(p.key, p.labels)
            elif p.kind == "int":
                hp.Int(p.key, int(p.low), int(p.high), step=int(p.step or 1), sampling=p.sampling)
            else:
                hp.Float(p.key, p.low, p.high, step=p.step, sampling=p.sampling)
        return hp

    def values(self, drawn: dict) -> dict:
        """`{key: config value}` of KerasTuner's drawn `trial.hyperparameters.values` (`tuner/...` left out)."""
        return {p.key: p.value(drawn[p.key]) for p in self.params if p.key in drawn}


def _check_key(full: dict, key: str) -> None:
    try:
        get_path(full, key)
    except KeyError as e:
        missing = e.args[0]
        parent, _, name = missing.rpartition(".")
        section = get_path(full, parent) if parent else full
        if not isinstance(section, dict):
            raise SearchSpaceError(f"{key}: unknown config key: {parent} is a value, not a section") from None
        close = difflib.get_close_matches(name, list(section), n=1)
        hint = f"; did you mean {'.'.join(filter(None, [parent, close[0]]))!r}?" if close else ""
        raise SearchSpaceError(
            f"{key}: unknown config key {missing!r}{hint} ({parent or 'the job config'} has: "
            f"{', '.join(sorted(section))})"
        ) from None
