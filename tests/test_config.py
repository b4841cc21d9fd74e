"""Config validation: every bad value fails with the full key and what is allowed; CLI help is complete."""

import argparse
import datetime
import glob
import os

import pytest

from tfrec.config_validation import check_range
from tfrec.data.simulator import SimulatorConfig
from tfrec.jobs.config import JobConfig
from tfrec.models.config import ModelConfig, TextConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def error_of(config: dict) -> str:
    with pytest.raises(ValueError) as info:
        JobConfig.from_dict(config)
    return str(info.value)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"model": {"multitask": "mmo"}}, "model.multitask: unknown 'mmo'; one of 'shared_bottom', 'mmoe', 'ple'"),
        ({"model": {"value_loss": "mae"}}, "model.value_loss: unknown 'mae'; one of 'ziln', 'mse', 'huber'"),
        ({"model": {"text": {"pooling": "max"}}}, "model.text.pooling: unknown 'max'; one of 'mean', 'cls'"),
        (
            {"model": {"text": {"item_text": "bow"}}},
            "model.text.item_text: unknown 'bow'; one of 'shared', 'bag_of_words', 'none'",
        ),
        (
            {"model": {"loss_weights": {"clicks": 1.0}}},
            "model.loss_weights: unknown 'clicks'; one of 'retrieval', 'ctr', 'value', 'relevance', 'intent'",
        ),
        (
            {"training": {"lr_schedule": "linear"}},
            "training.lr_schedule: unknown 'linear'; one of 'constant', 'cosine'",
        ),
        (
            {"training": {"mixed_precision": "fp8"}},
            "training.mixed_precision: unknown 'fp8'; one of 'off', 'mixed_bfloat16', 'mixed_float16'",
        ),
        (
            {"training": {"strategy": "horovod"}},
            "training.strategy: unknown 'horovod'; one of 'auto', 'default', 'mirrored', 'multi_worker', 'one_device'",
        ),
        ({"training": {"verbose": 3}}, "training.verbose: unknown 3; one of 0, 1, 2"),
        (
            {"training": {"monitor": "accuracy"}},
            "training.monitor: unknown 'accuracy'; one of 'val_loss', 'val_<task>_loss' or 'val_ndcg@K' "
            "(search tables: NDCG@K per validation query, higher is better)",
        ),
        ({"data": {"source": "s3"}}, "data.source: unknown 's3'; one of 'simulator', 'files'"),
        ({"data": {"format": "json"}}, "data.format: unknown 'json'; one of 'auto', 'csv', 'parquet'"),
        (
            {"data": {"shape": "clicks"}},
            "data.shape: unknown 'clicks'; one of 'search', 'interactions', 'transactions'",
        ),
        ({"data": {"split_by": "user"}}, "data.split_by: unknown 'user'; one of 'auto', 'time', 'query'"),
    ],
)
def test_enumerated_keys_name_the_key_and_the_allowed_values(config, message):
    assert error_of(config) == message


def test_an_unknown_preset_lists_what_a_preset_may_be(tmp_path):
    message = error_of({"model": {"text": {"preset": "bert_hug"}}})
    assert message == (
        "model.text.preset: unknown 'bert_hug'; one of: None (from-scratch BERT), 'minilm', "
        "a keras-hub preset name (e.g. 'bert_tiny_en_uncased'), or a local BERT directory"
    )
    for preset in (None, "minilm", str(tmp_path), "bert_tiny_en_uncased"):
        assert TextConfig(preset=preset).preset == preset


@pytest.mark.parametrize(
    "config, message",
    [
        ({"training": {"batch_size": "abc"}}, "training.batch_size: expected an integer, got 'abc'"),
        ({"training": {"epochs": 1.5}}, "training.epochs: expected an integer, got 1.5"),
        ({"training": {"learning_rate": "fast"}}, "training.learning_rate: expected a number, got 'fast'"),
        ({"training": {"clipnorm": "x"}}, "training.clipnorm: expected a number or None, got 'x'"),
        ({"training": {"tensorboard": "yes"}}, "training.tensorboard: expected true or false, got 'yes'"),
        ({"model": {"tower_units": 128}}, "model.tower_units: expected a list of integers, got 128"),
        ({"model": {"tower_units": [64, "x"]}}, "model.tower_units[1]: expected an integer, got 'x'"),
        ({"model": {"text": "minilm"}}, "model.text: expected a mapping (TextConfig), got 'minilm'"),
        ({"evaluation": {"ks": ["10"]}}, "evaluation.ks[0]: expected an integer, got '10'"),
        ({"output_dir": 3}, "config.output_dir: expected a string, got 3"),
    ],
)
def test_type_errors_name_the_key_and_the_expected_type(config, message):
    assert error_of(config) == message


@pytest.mark.parametrize(
    "config, message",
    [
        ({"training": {"batch_size": 0}}, "training.batch_size: must be >= 2, got 0"),
        ({"training": {"epochs": 0}}, "training.epochs: must be >= 1, got 0"),
        ({"training": {"learning_rate": 0}}, "training.learning_rate: must be > 0, got 0"),
        ({"training": {"learning_rate": float("nan")}}, "training.learning_rate: must be > 0, got nan"),
        ({"training": {"clipnorm": -1.0}}, "training.clipnorm: must be > 0, got -1.0"),
        ({"training": {"value_holdout_fraction": 1.0}}, "training.value_holdout_fraction: must be in [0, 1), got 1.0"),
        (
            {"training": {"backbone_learning_rate_multiplier": 0}},
            "training.backbone_learning_rate_multiplier: must be in (0, 10], got 0",
        ),
        ({"training": {"warmup_steps": -1}}, "training.warmup_steps: must be >= 0, got -1"),
        ({"model": {"temperature": 0.0}}, "model.temperature: must be > 0, got 0.0"),
        ({"model": {"id_dropout": 1}}, "model.id_dropout: must be in [0, 1), got 1"),
        ({"model": {"tower_units": [64, 0]}}, "model.tower_units[1]: must be >= 1, got 0"),
        ({"model": {"loss_weights": {"ctr": -1}}}, "model.loss_weights.ctr: must be >= 0, got -1"),
        ({"model": {"text": {"query_sequence_length": 2}}}, "model.text.query_sequence_length: must be >= 3, got 2"),
        ({"model": {"text": {"dropout": 1.0}}}, "model.text.dropout: must be in [0, 1), got 1.0"),
        ({"data": {"value_valid_fraction": -0.1}}, "data.value_valid_fraction: must be in [0, 1), got -0.1"),
        ({"data": {"negatives_per_positive": -1}}, "data.negatives_per_positive: must be >= 0, got -1"),
        ({"data": {"history_window_days": 0}}, "data.history_window_days: must be > 0, got 0"),
        ({"evaluation": {"ks": [10, 0]}}, "evaluation.ks[1]: must be >= 1, got 0"),
        ({"export": {"max_k": 0}}, "export.max_k: must be >= 1, got 0"),
        ({"simulator": {"num_items": 0}}, "simulator.num_items: must be >= 1, got 0"),
        ({"simulator": {"value_zero_share": 1.0}}, "simulator.value_zero_share: must be in (0, 1), got 1.0"),
        ({"test_fraction": 1.0}, "config.test_fraction: must be in [0, 1), got 1.0"),
        (
            {"valid_fraction": 0.5, "test_fraction": 0.5},
            "config.valid_fraction + config.test_fraction: must be in [0, 1), got 1.0",
        ),
    ],
)
def test_numbers_out_of_range_name_the_key_and_the_range(config, message):
    assert error_of(config) == message


def test_cross_field_checks_name_both_keys():
    assert (
        error_of({"model": {"text": {"hidden_dim": 30, "num_heads": 4}}})
        == "model.text.hidden_dim (30) must be a multiple of model.text.num_heads (4)"
    )
    assert (
        error_of({"simulator": {"num_items": 5, "slate_size": 10}})
        == "simulator.slate_size (10) exceeds simulator.num_items (5)"
    )


def test_unknown_keys_name_the_key_and_the_known_ones():
    message = error_of({"trainig": {}})
    assert message.startswith("config: unknown key(s) ['trainig']; known keys are [")
    assert "'training'" in message
    assert error_of({"model": {"text": {"hiden_dim": 8}}}).startswith("model.text: unknown key(s) ['hiden_dim']")
    assert error_of({"simulator": {"users": 8}}).startswith("simulator: unknown key(s) ['users']")


def test_friendly_conversions_keep_the_intended_values(tmp_path):
    # PyYAML reads `1e-3` (an exponent without a dot) as a string; an unquoted date as a date.
    config = JobConfig.from_dict(
        {
            "training": {"learning_rate": "1e-3"},
            "data": {"cutoff": datetime.date(2024, 3, 31), "paths": tmp_path / "a.csv"},
            "output_dir": tmp_path,
            "model": {"tower_units": (64, 32)},
        }
    )
    assert config.training.learning_rate == pytest.approx(1e-3)
    assert config.data.cutoff == "2024-03-31"
    assert config.data.paths == [str(tmp_path / "a.csv")]
    assert config.output_dir == str(tmp_path)
    assert config.model.tower_units == [64, 32]


def test_defaults_are_unchanged_and_round_trip(tmp_path):
    config = JobConfig()
    assert (config.training.batch_size, config.training.learning_rate, config.training.strategy) == (512, 2e-3, "auto")
    assert (config.model.multitask, config.model.text.preset, config.output_dir) == (
        "shared_bottom",
        None,
        "runs/quickstart",
    )
    assert ModelConfig().loss_weights == {"retrieval": 1.0, "ctr": 1.0, "value": 0.3, "relevance": 0.3, "intent": 0.3}
    assert SimulatorConfig().num_users == 20_000
    config.to_yaml(tmp_path / "c.yaml")
    assert JobConfig.from_yaml(tmp_path / "c.yaml") == config


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "training", "configs", "*.yaml"))))
def test_shipped_configs_pass_validation(path):
    assert isinstance(JobConfig.from_yaml(path), JobConfig)


def test_check_range_reads_interval_notation():
    check_range("k", 0, "[0, 1)")
    check_range("k", 10, "(0, 10]")
    with pytest.raises(ValueError, match=r"^k: must be in \(0, 10\], got 10.5$"):
        check_range("k", 10.5, "(0, 10]")
    with pytest.raises(ValueError, match=r"^k.b: must be <= 1, got 2$"):
        check_range("k", {"a": 0, "b": 2}, "<= 1")


# ---------------------------------------------------------------------- CLI
class _Parsed(Exception):
    def __init__(self, parser):
        super().__init__("parser built")
        self.parser = parser


def _cli_parser(monkeypatch) -> argparse.ArgumentParser:
    """The parser `tfrec.cli.main` builds (caught at `parse_args`, before anything runs)."""
    from tfrec import cli

    def capture(self, *args, **kwargs):
        raise _Parsed(self)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", capture)
    with pytest.raises(_Parsed) as info:
        cli.main([])
    return info.value.parser


def test_every_cli_flag_of_every_subcommand_has_help(monkeypatch):
    parser = _cli_parser(monkeypatch)
    (subparsers,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    commands = subparsers.choices
    assert {"quickstart", "train", "evaluate", "export", "serve", "validate"} <= set(commands)
    missing = []
    for name, sub in commands.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not (action.help or "").strip():
                missing.append(f"tfrec {name} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"flags without help: {missing}"
    helps = {c.dest: c.help for c in subparsers._choices_actions}
    assert all(helps.get(name) for name in commands), helps
