"""Every bundled simulator config (training/configs) builds only heads its data trains.

The file configs (search logs, interactions, transactions, Online Retail) run end
to end in tests/test_tables.py. Here the simulator configs, including the
multi-GPU and multi-worker ones (MiniLM, mixed bfloat16, MMoE, backbone learning
rate), train a few steps on a small simulated log with their own model and
optimiser settings; the autouse fixture in conftest.py fails the test on any
"Gradients do not exist" warning. Only the sizes are shrunk: data, batch, epochs;
XLA is off (a CPU no-op that would recompile per shape).
"""

import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted(
    p.name
    for p in (ROOT / "training" / "configs").glob("*.yaml")
    if (yaml.safe_load(p.read_text()).get("data") or {}).get("source", "simulator") == "simulator"
)


def test_the_simulator_configs_are_found():
    assert {"quickstart.yaml", "multi_gpu.yaml", "multi_worker.yaml"} <= set(CONFIGS)


@pytest.mark.parametrize("name", CONFIGS)
def test_bundled_config_trains_every_head_it_builds(name, tmp_path):
    from tfrec.data.simulator import simulate
    from tfrec.data.split import time_split
    from tfrec.data.validation import validate
    from tfrec.jobs.config import JobConfig
    from tfrec.models import task_names
    from tfrec.training import train_model

    raw = yaml.safe_load((ROOT / "training" / "configs" / name).read_text())
    raw["simulator"] = {**raw.get("simulator", {}), "num_users": 200, "num_items": 80, "num_sessions": 120}
    raw["training"] = {
        **raw.get("training", {}),
        "epochs": 1,
        "batch_size": 32,
        "xla": False,
        "warmup_steps": 2,
        "tensorboard": False,
        "verbose": 0,
        "strategy": "auto",
    }
    raw["output_dir"] = str(tmp_path / "run")
    config = JobConfig.from_dict(raw)
    sim = simulate(config.simulator)
    schema = sim.schema()
    split = time_split(validate(sim.impressions, schema).valid, schema)
    model, history = train_model(config, schema, split.train, None, run_dir=str(tmp_path / "run"))
    assert (
        sorted(model.task_names)
        == sorted(task_names(schema, config.model))
        == ["ctr", "relevance", "retrieval", "value"]
    )
    assert all(history.history[f"{t}_loss"][0] > 0 for t in model.task_names)
