"""`tfrec tune`: the search space, the objective, and a resumed KerasTuner search of tiny simulated jobs."""

import os

import pytest
import yaml

from tfrec.jobs.config import JobConfig
from tfrec.tuning.objective import Objective, ObjectiveError, default_objective
from tfrec.tuning.space import SearchSpace, SearchSpaceError, apply_values

# Far smaller than tests/test_jobs.py: no text encoder (the tuner's logic does not depend on the model; a
# from-scratch BERT adds ~20 s per trial on 2 cores), one epoch, no export.
TINY_JOB = {
    "simulator": {"num_users": 60, "num_items": 30, "num_sessions": 40, "seed": 1},
    "model": {"embedding_dim": 8, "id_embedding_dim": 4, "tower_units": [8], "expert_units": [8], "use_text": False},
    "training": {"epochs": 1, "batch_size": 64, "verbose": 0, "tensorboard": False, "checkpoint_every_steps": 0},
    "evaluation": {"ks": [5, 10], "max_queries": 50},
    "export": {"enabled": False},
    "output_dir": "runs/tiny",
}
SPACE = {
    "training.learning_rate": {"type": "float", "min": "1e-3", "max": 1e-2, "sampling": "log"},
    "model.embedding_dim": {"type": "choice", "values": [8, 16]},
}


@pytest.mark.parametrize(
    "space, message",
    [
        (
            {"training.learnin_rate": {"type": "float", "min": 0.1, "max": 1}},
            "training.learnin_rate: unknown config key",
        ),
        ({"training.learnin_rate": {"type": "float", "min": 0.1, "max": 1}}, "did you mean 'training.learning_rate'"),
        (
            {"modle.embedding_dim": {"type": "int", "min": 8, "max": 32}},
            "modle.embedding_dim: unknown config key 'modle'",
        ),
        ({"training.epochs.max": {"type": "int", "min": 1, "max": 3}}, "training.epochs.max: unknown config key"),
        ({"training.learning_rate": {"type": "floaty", "min": 0.1, "max": 1}}, "training.learning_rate.type: unknown"),
        (
            {"training.learning_rate": {"type": "float", "min": 0.1, "max": 0.01}},
            r"training.learning_rate: min \(0.1\)",
        ),
        ({"training.learning_rate": {"type": "float", "min": 0, "max": 1, "sampling": "log"}}, "needs min > 0"),
        ({"training.learning_rate": {"type": "float", "max": 1}}, "training.learning_rate: type float needs 'min'"),
        ({"training.learning_rate": {"type": "float", "min": 0.1, "max": 1, "smapling": "log"}}, "'smapling'"),
        ({"model.embedding_dim": {"type": "int", "min": 8.5, "max": 32}}, "model.embedding_dim: min must be an int"),
        ({"model.embedding_dim": {"type": "choice", "values": []}}, "model.embedding_dim.values: expected a non-empty"),
        ({"model.embedding_dim": {"type": "choice", "values": [8, 8]}}, "model.embedding_dim.values: duplicate"),
        # Values the job config itself rejects, named by the space key and by the config's own message.
        ({"training.learning_rate": {"type": "float", "min": -1, "max": 1}}, "training.learning_rate: must be > 0"),
        ({"model.embedding_dim": {"type": "choice", "values": [16, "big"]}}, "model.embedding_dim: the job config rej"),
        ({"training.epochs": {"type": "bool"}}, "training.epochs: the job config rejects False"),
        ({"model.multitask": {"type": "choice", "values": ["mmoe", "mmo"]}}, "model.multitask: unknown 'mmo'"),
        ({"output_dir": {"type": "choice", "values": ["a", "b"]}}, "output_dir: cannot be tuned"),
        ({"training.learning_rate": 0.01}, "training.learning_rate: expected a mapping"),
        ({}, "search space: expected a mapping"),
    ],
)
def test_space_errors_name_the_key(space, message):
    with pytest.raises(SearchSpaceError, match=message):
        SearchSpace.from_dict(space).validate(TINY_JOB)


def test_a_valid_space_passes_and_reads_from_yaml(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(
        "training.learning_rate: {type: float, min: 1e-4, max: 1e-2, sampling: log}\n"  # PyYAML: '1e-4' is a string
        "model.tower_units: {type: choice, values: [[8], [16, 8]]}\n"
        "model.text.num_layers: {type: int, min: 1, max: 3}\n"
        "model.loss_weights.ctr: {type: float, min: 0.5, max: 2}\n"
        "model.logq_correction: {type: boolean}\n"
    )
    space = SearchSpace.from_yaml(path)
    space.validate(TINY_JOB)
    assert space.keys == [
        "training.learning_rate",
        "model.tower_units",
        "model.text.num_layers",
        "model.loss_weights.ctr",
        "model.logq_correction",
    ]
    assert space.param("training.learning_rate").low == pytest.approx(1e-4)
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        SearchSpace.from_yaml(tmp_path / "nope.yaml")


def test_the_bundled_space_fits_the_quickstart_job():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "training", "configs", "quickstart.yaml"), encoding="utf-8") as f:
        quickstart = yaml.safe_load(f)
    space = SearchSpace.from_yaml(os.path.join(root, "training", "tuning", "quickstart_space.yaml"))
    space.validate(quickstart)
    assert "training.learning_rate" in space.keys


def test_applying_a_trials_values_into_the_config():
    job = {"training": {"epochs": 1}, "model": {"embedding_dim": 8}}
    out = apply_values(job, {"training.learning_rate": 3e-3, "model.text.num_layers": 2, "model.embedding_dim": 16})
    assert out == {
        "training": {"epochs": 1, "learning_rate": 3e-3},
        "model": {"embedding_dim": 16, "text": {"num_layers": 2}},
    }
    assert job == {"training": {"epochs": 1}, "model": {"embedding_dim": 8}}  # a copy: the job is left as it was
    config = JobConfig.from_dict(out)
    assert config.training.learning_rate == 3e-3 and config.model.text.num_layers == 2

    # A choice of lists (or of mixed types) goes to KerasTuner as labels and comes back as the values.
    space = SearchSpace.from_dict(
        {
            "model.tower_units": {"type": "choice", "values": [[8], [16, 8]]},
            "training.clipnorm": {"type": "choice", "values": [None, 1.0]},
            "model.embedding_dim": {"type": "choice", "values": [8, 16]},
        }
    )
    hp = space.hyperparameters()
    assert hp.space[0].values == ["[8]", "[16, 8]"] and hp.space[2].values == [8, 16]
    drawn = {"model.tower_units": "[16, 8]", "training.clipnorm": "null", "model.embedding_dim": 16, "tuner/epochs": 3}
    values = space.values(drawn)
    assert values == {"model.tower_units": [16, 8], "training.clipnorm": None, "model.embedding_dim": 16}
    assert JobConfig.from_dict(apply_values(TINY_JOB, values)).model.tower_units == [16, 8]


def test_objective_direction_reading_and_default():
    assert Objective.parse("retrieval.model.recall@50").direction == "max"
    assert Objective.parse("ctr.model.log_loss").direction == "min"
    assert Objective.parse("history.val_ctr_loss").direction == "min"
    assert Objective.parse("business.model.widgets:max") == Objective("business.model.widgets", "max")
    with pytest.raises(ObjectiveError, match="'business.model.widgets'.*widgets:max"):
        Objective.parse("business.model.widgets")
    metrics = {"retrieval": {"model": {"recall@10": 0.4}}, "history": {"val_loss": [0.9, None, 0.7, 0.8]}}
    assert Objective.parse("retrieval.model.recall@10").read(metrics) == 0.4
    assert Objective.parse("history.val_loss").read(metrics) == 0.7  # the best epoch
    with pytest.raises(ObjectiveError, match=r"'retrieval.model.recall@50'.*retrieval.model has: recall@10"):
        Objective.parse("retrieval.model.recall@50").read(metrics)
    assert default_objective(JobConfig.from_dict(TINY_JOB)) == Objective("retrieval.model.recall@10", "max")
    files = {"data": {"source": "files", "shape": "transactions", "cutoff": "2024-01-01"}}
    assert default_objective(JobConfig.from_dict(files)).name == "value.model.normalized_gini"
    search = {"data": {"source": "files", "shape": "search"}, "evaluation": {"ks": [10, 50, 100]}}
    assert default_objective(JobConfig.from_dict(search)).name == "search.retrieval.model.recall@50"


def test_distributed_roles_follow_kerastuner_variables(monkeypatch):
    from tfrec.tuning.tuner import tuner_role

    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert tuner_role() == "single"
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "10.0.0.1")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "chief")
    with pytest.raises(ValueError, match="KERASTUNER_ORACLE_PORT"):
        tuner_role()
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "8000")
    assert tuner_role() == "chief"
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "tuner1")
    assert tuner_role() == "worker"


def test_hyperband_budget_is_training_epochs(tmp_path):
    from tfrec.tuning.tuner import JobTuner, make_oracle, tune

    job = apply_values(TINY_JOB, {"training.epochs": 3})
    space = SearchSpace.from_dict(SPACE)
    objective = Objective("retrieval.model.recall@10", "max")
    oracle = make_oracle("hyperband", objective, space, trials=4, max_epochs=3, seed=1)
    assert oracle.max_trials == 4
    tuner = JobTuner(oracle, job, space, objective, str(tmp_path / "hb"))
    trial = tuner.oracle.create_trial("tuner0")
    assert trial.hyperparameters.values["tuner/epochs"] == 1  # the most aggressive bracket starts at 3 / 3
    trial_job = tuner.trial_job(trial)
    assert trial_job["training"]["epochs"] == 1
    assert trial_job["output_dir"] == str(tmp_path / "hb" / "trials" / f"trial_{trial.trial_id}")
    assert trial_job["export"]["enabled"] is False
    assert trial_job["model"]["embedding_dim"] in (8, 16) and 1e-3 <= trial_job["training"]["learning_rate"] <= 1e-2

    with pytest.raises(ValueError, match="training.epochs: Hyperband"):
        tune(TINY_JOB, SPACE, trials=2, algorithm="hyperband", output_dir=str(tmp_path / "x"))
    with pytest.raises(SearchSpaceError, match="training.epochs: cannot be tuned"):
        tune(job, {"training.epochs": {"type": "int", "min": 1, "max": 3}}, algorithm="hyperband")
    with pytest.raises(ValueError, match="algorithm: unknown 'grid'"):
        tune(TINY_JOB, SPACE, algorithm="grid")


def test_a_combination_the_config_rejects_fails_only_that_trial(tmp_path):
    import keras_tuner

    from tfrec.tuning.tuner import JobTuner, make_oracle

    # Each value passes alone (with the job's 64-wide, 2-head text encoder); 12 dims over 8 heads does not.
    space = SearchSpace.from_dict(
        {
            "model.text.hidden_dim": {"type": "choice", "values": [8, 12]},
            "model.text.num_heads": {"type": "choice", "values": [2, 8]},
        }
    )
    space.validate(TINY_JOB)
    objective = Objective("retrieval.model.recall@10", "max")
    tuner = JobTuner(make_oracle("random", objective, space, 2, 1, 1), TINY_JOB, space, objective, str(tmp_path))
    hp = space.hyperparameters()
    hp.values = {"model.text.hidden_dim": 12, "model.text.num_heads": 8}
    with pytest.raises(ValueError, match="model.text.hidden_dim \\(12\\) must be a multiple of model.text.num_heads"):
        tuner.run_trial(keras_tuner.engine.trial.Trial(hp, trial_id="0"))
    assert not (tmp_path / "trials").exists()


def test_an_interrupted_search_resumes_without_rerunning_finished_trials(tmp_path, monkeypatch):
    import tfrec.jobs
    from tfrec.cli import main
    from tfrec.tuning.tuner import tune

    real_run_job = tfrec.jobs.run_job
    ran, stop_at = [], []

    def run_job(config):
        name = os.path.basename(config.output_dir)
        ran.append(name)
        if name in stop_at:
            raise KeyboardInterrupt  # the search is killed while this trial's job runs
        return real_run_job(config)

    monkeypatch.setattr(tfrec.jobs, "run_job", run_job)
    job_path, space_path, out = tmp_path / "job.yaml", tmp_path / "space.yaml", tmp_path / "tune"
    job_path.write_text(yaml.safe_dump(TINY_JOB))
    space_path.write_text(yaml.safe_dump(SPACE))

    first = tune(str(job_path), str(space_path), trials=1, output_dir=str(out), verbose=0)
    assert ran == ["trial_0"] and [t.status for t in first.trials] == ["COMPLETED"]
    trial_0 = out / "trials" / "trial_0"
    # The trial is an ordinary run directory with its resolved config: the drawn values, its own output_dir.
    written = JobConfig.from_yaml(trial_0 / "config.yaml")
    assert (
        written.output_dir == str(trial_0)
        and written.training.learning_rate == first.trials[0].values["training.learning_rate"]
    )
    stamps = {p: os.stat(trial_0 / p).st_mtime_ns for p in ("metrics.json", "model.keras", "config.yaml")}

    stop_at.append("trial_1")
    with pytest.raises(KeyboardInterrupt):
        tune(str(job_path), str(space_path), trials=2, output_dir=str(out), verbose=0)
    assert ran == ["trial_0", "trial_1"]
    stop_at.clear()

    second = tune(str(job_path), str(space_path), trials=2, output_dir=str(out), verbose=0)
    # Only the interrupted trial ran again (KerasTuner retried it under its id); the finished one was not rerun.
    assert ran == ["trial_0", "trial_1", "trial_1"]
    assert {p: os.stat(trial_0 / p).st_mtime_ns for p in stamps} == stamps
    assert [(t.trial_id, t.status) for t in second.trials] == [("0", "COMPLETED"), ("1", "COMPLETED")]
    assert sorted(os.listdir(out / "keras_tuner")) == ["oracle.json", "trial_0", "trial_1", "tuner0.json"]
    assert (out / "trials" / "trial_1" / "metrics.json").exists()

    # best.yaml is the job with the best trial's values, runnable by `tfrec train --config best.yaml`.
    best = second.best
    scores = [t.score for t in second.trials]
    assert best is not None and best.score == max(scores)
    best_config = JobConfig.from_yaml(out / "best.yaml")
    assert best_config.training.learning_rate == best.values["training.learning_rate"]
    assert best_config.model.embedding_dim == best.values["model.embedding_dim"]
    assert best_config.output_dir == "runs/tiny" and best_config.simulator.num_users == 60
    page = (out / "summary.html").read_text()
    assert "retrieval.model.recall@10" in page and "trials/trial_1" in page and "data:image/png;base64," in page
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The CLI on the finished search: nothing left to run; it rewrites the summary and exits 0.
    argv = ["tune", "--config", str(job_path), "--space", str(space_path), "--trials", "2"]
    assert main([*argv, "--output-dir", str(out)]) == 0
    assert ran == ["trial_0", "trial_1", "trial_1"]
    # Resuming with another search space (or objective, algorithm, job) is an error, not a mixed search.
    space_path.write_text(yaml.safe_dump({**SPACE, "model.logq_correction": {"type": "bool"}}))
    with pytest.raises(ValueError, match="tune.yaml differs in space"):
        tune(str(job_path), str(space_path), trials=3, output_dir=str(out))
    assert main([*argv, "--output-dir", str(out), "--objective", "ctr.model.auc"]) == 2
