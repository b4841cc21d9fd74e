"""Every bundled simulator config (training/configs) builds only heads its data trains, and serves as trained.

The file configs (search logs, interactions, transactions, Online Retail) run end
to end in tests/test_tables.py, through `tfrec export` and a server. Here the
simulator configs, including the multi-GPU and multi-worker ones (MiniLM, mixed
bfloat16, MMoE, backbone learning rate), train a few steps on a small simulated
log with their own model and optimiser settings; pyproject's filterwarnings fails
the test on any "Gradients do not exist" warning. Only the sizes are shrunk: data,
batch, epochs; XLA is off (a CPU no-op that would recompile per shape). Each
trained model is then exported and all of them are served by one server: every
signature over gRPC and REST answers as the in-process model (tests/served_check.py).
"""

import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted(
    p.name
    for p in (ROOT / "training" / "configs").glob("*.yaml")
    if (yaml.safe_load(p.read_text()).get("data") or {}).get("source", "simulator") == "simulator"
)


def test_the_simulator_configs_are_found_and_every_other_config_runs_in_test_tables():
    assert {"quickstart.yaml", "multi_gpu.yaml", "multi_worker.yaml"} <= set(CONFIGS)
    files = {p.name for p in (ROOT / "training" / "configs").glob("*.yaml")} - set(CONFIGS)
    # tests/test_tables.py trains, exports and serves each through _example_config(tmp_path, "<name>", ...).
    used = re.findall(r'_example_config\(\s*[^,]+,\s*"(\w+)"', (ROOT / "tests" / "test_tables.py").read_text())
    assert files == {f"{name}.yaml" for name in used}


def _train(name, run_dir):
    from tfrec.data.simulator import simulate
    from tfrec.data.split import time_split
    from tfrec.data.validation import validate
    from tfrec.jobs.config import JobConfig
    from tfrec.training import train_model

    raw = yaml.safe_load((ROOT / "training" / "configs" / name).read_text())
    raw["simulator"] = {**raw.get("simulator", {}), "num_users": 40, "num_items": 24, "num_sessions": 8}
    raw["training"] = {
        **raw.get("training", {}),
        "epochs": 1,
        "batch_size": 8,
        "xla": False,
        "warmup_steps": 2,
        "tensorboard": False,
        "verbose": 0,
        "strategy": "auto",
    }
    raw["output_dir"] = str(run_dir)
    config = JobConfig.from_dict(raw)
    sim = simulate(config.simulator)
    schema = sim.schema()
    split = time_split(validate(sim.impressions, schema).valid, schema)
    model, history = train_model(config, schema, split.train, None, run_dir=str(run_dir))
    return config, sim, split, model, history


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`trained(name)`: (config, sim, split, model, history) of a bundled config, trained once per module."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = _train(name, tmp_path_factory.mktemp(name.removesuffix(".yaml")))
        return cache[name]

    return get


def _settings(name):
    """A config's settings but where its run is written (multi_gpu and multi_worker differ there and in comments)."""
    raw = yaml.safe_load((ROOT / "training" / "configs" / name).read_text())
    raw.pop("output_dir", None)
    return raw


# Configs with equal settings train the same program on one CPU process (multi_worker.yaml is multi_gpu.yaml
# for a cluster: only the devices `strategy: auto` finds differ): the first of them stands for the others.
DISTINCT = [n for i, n in enumerate(CONFIGS) if all(_settings(o) != _settings(n) for o in CONFIGS[:i])]


def test_configs_left_out_of_training_have_the_settings_of_one_trained():
    assert "multi_gpu.yaml" in DISTINCT and "quickstart.yaml" in DISTINCT
    for name in set(CONFIGS) - set(DISTINCT):
        assert any(_settings(name) == _settings(kept) for kept in DISTINCT), name


@pytest.mark.parametrize("name", DISTINCT)
def test_bundled_config_trains_every_head_it_builds(name, trained):
    from tfrec.models import task_names

    config, sim, _, model, history = trained(name)
    assert (
        sorted(model.task_names)
        == sorted(task_names(sim.schema(), config.model))
        == ["ctr", "intent", "relevance", "retrieval", "value"]
    )
    assert all(history.history[f"{t}_loss"][0] > 0 for t in model.task_names)


def test_bundled_configs_export_and_serve_as_trained(trained, tmp_path):
    """Each config's model exported to one base dir under its own name; one server serves them all.

    Configs with equal settings build and export the same program: the first of them stands for the others.
    """
    from served_check import check_served, local_server

    from tfrec.export import export_model

    exported = {}
    for name in DISTINCT:
        _, sim, split, model, _ = trained(name)
        examples, catalog = split.test.head(4), sim.items
        export_model(
            model,
            str(tmp_path),
            catalog=catalog,
            examples=examples,
            model_name=name.removesuffix(".yaml"),
            max_k=10,
            verbose=False,
        )
        exported[name] = (model, examples, catalog)
    with local_server({name.removesuffix(".yaml"): tmp_path / name.removesuffix(".yaml") for name in exported}) as ep:
        for name, (model, examples, catalog) in exported.items():
            check_served(ep, name.removesuffix(".yaml"), model, examples, catalog)
