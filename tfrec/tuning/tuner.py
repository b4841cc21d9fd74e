"""Hyperparameter search over a job's config with KerasTuner: one ordinary job run per trial.

`tune(job, space, trials)` is `tfrec tune`: a KerasTuner oracle
(`keras_tuner.oracles.BayesianOptimizationOracle`, `HyperbandOracle` or
`RandomSearchOracle`) draws the values of the search space
(`tfrec.tuning.space`), and `JobTuner`, a `keras_tuner.Tuner` whose
`run_trial` runs the whole job (`tfrec.jobs.run_job`, as `tfrec train`
does) rather than building a model, writes each trial's run directory
`<output_dir>/trials/trial_<id>` (its resolved `config.yaml`, `model.keras`,
`metrics.json`, `report.html`) and reports the objective
(`tfrec.tuning.objective`) read from its `metrics.json`.

Layout of `output_dir`:

```text
tune.yaml         what the search is (job, space, algorithm, objective, seed): a rerun must match it
keras_tuner/      KerasTuner's project: oracle state and one trial.json per trial
trials/trial_N/   each trial's run directory
best.yaml         the best trial's job config, ready for `tfrec train --config best.yaml`
summary.html/png  the trials, objective per trial and per tuned key (`tfrec.tuning.report`)
```

Resume: the search reloads KerasTuner's project (`overwrite=False`), so a
rerun on the same `output_dir` goes on where the last one stopped: finished
trials are not run again, a trial cut short is run again (KerasTuner's
retry of the trials that were running) and its job resumes from the run
directory's backup as `tfrec train` does; raising `trials` runs more. Each
trial's job trains without exporting (`export.enabled: false`); `tfrec
export <run dir>` exports any trial afterwards, and `best.yaml` keeps the
job's export settings.

Hyperband's budget is `training.epochs`: the job's value is the largest
(`max_epochs`, at least 3, the halving factor), and each trial trains its
bracket's epochs from scratch (a promoted configuration runs again with more
epochs; it does not continue the earlier trial's weights).

Distributed search follows KerasTuner: with `KERASTUNER_ORACLE_IP`,
`KERASTUNER_ORACLE_PORT` and `KERASTUNER_TUNER_ID` set, the process whose id
is `chief` serves the oracle and writes `best.yaml` and the summary once
every trial is done; the others (ids `tuner0`, `tuner1`, ...) run trials,
and `output_dir` must be storage they all reach.

Example:

```python
result = tune("training/configs/quickstart.yaml", "space.yaml", trials=8, output_dir="runs/tune")
result.best.values, result.best.score, result.best_config   # ..., 0.42, 'runs/tune/best.yaml'
```
"""

from __future__ import annotations

import copy
import dataclasses
import os

import keras_tuner
import yaml

from tfrec.config_validation import read_yaml
from tfrec.console import log
from tfrec.jobs.config import JobConfig
from tfrec.tuning.objective import Objective, ObjectiveError, default_objective, read_metrics
from tfrec.tuning.report import TrialRecord, best_trial, write_summary
from tfrec.tuning.space import SearchSpace, apply_values, get_path

__all__ = ["ALGORITHMS", "JobTuner", "TuneResult", "make_oracle", "tune", "tuner_role"]

ALGORITHMS = ("bayesian", "hyperband", "random")
#: Hyperband's halving factor (KerasTuner's default).
HYPERBAND_FACTOR = 3
ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


class FatalTrialError(keras_tuner.errors.FatalError, ValueError):
    """Stops the search: the objective is missing from a run, or a run directory holds another trial's run."""


def tuner_role() -> str:
    """`single` (no distributed search), `chief` (serves the oracle) or `worker`, from KerasTuner's variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    missing = [name for name in ENV if not os.environ.get(name)]
    if missing:
        raise ValueError(f"distributed tuning: KERASTUNER_ORACLE_IP is set but {', '.join(missing)} is not")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def make_oracle(algorithm: str, objective: Objective, space: SearchSpace, trials: int, max_epochs: int, seed: int):
    """The KerasTuner oracle of `algorithm` over `space`, stopping after `trials` trials."""
    common = {
        "objective": keras_tuner.Objective(objective.name, objective.direction),
        "hyperparameters": space.hyperparameters(),
        "allow_new_entries": False,
        "tune_new_entries": False,
        "seed": seed,
    }
    if algorithm == "random":
        return keras_tuner.oracles.RandomSearchOracle(max_trials=trials, **common)
    if algorithm == "bayesian":
        return keras_tuner.oracles.BayesianOptimizationOracle(max_trials=trials, **common)
    if algorithm == "hyperband":
        # No cap on Hyperband iterations: `trials` is the budget, as for the other algorithms.
        oracle = keras_tuner.oracles.HyperbandOracle(
            max_epochs=max_epochs, factor=HYPERBAND_FACTOR, hyperband_iterations=None, **common
        )
        oracle.max_trials = trials
        return oracle
    raise ValueError(f"algorithm: unknown {algorithm!r}; one of {', '.join(repr(a) for a in ALGORITHMS)}")


class JobTuner(keras_tuner.Tuner):
    """A `keras_tuner.Tuner` whose trials are whole `tfrec` jobs.

    Args:
        oracle: a KerasTuner oracle over `space.hyperparameters()` (`make_oracle`).
        job: the job's YAML mapping (as written: the trials and `best.yaml` add the drawn values to it).
        space: the `SearchSpace`.
        objective: the `Objective` read from each run's `metrics.json`.
        directory: the search's output directory: KerasTuner's project is
            `directory/keras_tuner`, the trials' run directories `directory/trials`.
    """

    def __init__(self, oracle, job: dict, space: SearchSpace, objective: Objective, directory: str):
        self.job = copy.deepcopy(job)
        self.space = space
        self.objective_spec = objective
        self.trials_dir = os.path.join(directory, "trials")
        super().__init__(oracle, directory=directory, project_name="keras_tuner", overwrite=False)

    def run_dir(self, trial_id: str) -> str:
        """The run directory of trial `trial_id`."""
        return os.path.join(self.trials_dir, f"trial_{trial_id}")

    def trial_values(self, drawn: dict) -> dict:
        """`{config key: value}` of KerasTuner's drawn values (Hyperband's `tuner/epochs` as `training.epochs`)."""
        values = self.space.values(drawn)
        if "tuner/epochs" in drawn:
            values["training.epochs"] = int(drawn["tuner/epochs"])
        return values

    def trial_job(self, trial) -> dict:
        """The job mapping trial `trial` runs: the job, its values, its run directory, no export."""
        values = self.trial_values(trial.hyperparameters.values)
        return apply_values(self.job, {**values, "export.enabled": False, "output_dir": self.run_dir(trial.trial_id)})

    def run_trial(self, trial, *args, **kwargs):
        """Runs the trial's job (or reads the metrics of one that finished before an interruption)."""
        import keras

        from tfrec.jobs import run_job

        run_dir = self.run_dir(trial.trial_id)
        try:
            # A combination of values the config rejects (each value alone passed) fails this trial only.
            config = JobConfig.from_dict(self.trial_job(trial))
        except ValueError as e:
            log(f"trial {trial.trial_id} failed: its values do not make a valid job config: {e}")
            raise
        self._check_run_dir(run_dir, trial, config)
        if os.path.isfile(os.path.join(run_dir, "metrics.json")):
            log(f"trial {trial.trial_id}: its job had finished in {run_dir}; reading its metrics.json")
        else:
            log(f"trial {trial.trial_id}: running the job in {run_dir}")
            keras.utils.clear_session()  # each trial builds its model afresh; no graph of the last one
            try:
                run_job(config)
            except Exception as e:
                log(f"trial {trial.trial_id} failed: {type(e).__name__}: {e}")
                raise
        try:
            value = self.objective_spec.read(read_metrics(run_dir), where=os.path.join(run_dir, "metrics.json"))
        except ObjectiveError as e:
            raise FatalTrialError(str(e)) from e
        return {self.objective_spec.name: value}

    def _check_run_dir(self, run_dir: str, trial, config: JobConfig) -> None:
        """Refuses a run directory whose `config.yaml` has other values than the trial (another search's)."""
        path = os.path.join(run_dir, "config.yaml")
        if not os.path.isfile(path):
            return
        with open(path, encoding="utf-8") as f:
            written = yaml.safe_load(f) or {}
        expected = config.to_dict()
        for key in self.trial_values(trial.hyperparameters.values):
            try:
                differs = get_path(written, key) != get_path(expected, key)
            except KeyError:
                differs = True
            if differs:
                raise FatalTrialError(
                    f"trial {trial.trial_id}: {run_dir} holds a run with another {key} than this trial's "
                    f"({get_path(expected, key)!r}); remove it or tune into a new --output-dir"
                )

    def on_search_begin(self):
        """Saves the oracle and this tuner first, so a search cut short in its first trial resumes too."""
        self.save()

    def save_model(self, trial_id, model, step=0):
        """Nothing: the trial's job saves its model in its run directory."""

    def load_model(self, trial):
        """The trained model of `trial` (its run directory's `model.keras`)."""
        from tfrec.jobs.pipeline import load_run_model

        return load_run_model(self.run_dir(trial.trial_id))

    def records(self) -> list[TrialRecord]:
        """Every trial the oracle knows, in the order they started."""
        out = []
        for trial in sorted(self.oracle.trials.values(), key=lambda t: int(t.trial_id)):
            drawn = trial.hyperparameters.values
            out.append(
                TrialRecord(
                    trial_id=trial.trial_id,
                    status=trial.status,
                    score=None if trial.score is None else float(trial.score),
                    values=self.space.values(drawn),
                    run_dir=self.run_dir(trial.trial_id),
                    epochs=int(drawn["tuner/epochs"]) if "tuner/epochs" in drawn else None,
                    message=trial.message,
                )
            )
        return out


@dataclasses.dataclass
class TuneResult:
    """What `tune` did.

    Args:
        output_dir: the search's directory.
        objective: the `Objective`.
        trials: every trial (`TrialRecord`), in the order they started.
        best: the best completed trial, or None (none finished; or a worker of a distributed search).
        best_config: the path of `best.yaml`, or None.
        summary: the paths of `summary.html` and `summary.png`, or None.
    """

    output_dir: str
    objective: Objective
    trials: list[TrialRecord]
    best: TrialRecord | None = None
    best_config: str | None = None
    summary: tuple[str, str] | None = None


def _load_job(job) -> dict:
    if isinstance(job, dict):
        return copy.deepcopy(job)
    raw = read_yaml(job, "config") or {}
    if not isinstance(raw, dict):
        raise ValueError(f"config {job}: expected a mapping, got {type(raw).__name__}")  # noqa: TRY004
    return raw


def _check_same_search(path: str, record: dict, write: bool) -> None:
    """A rerun must be the same search as the one `tune.yaml` records (`trials` may grow); else an error."""
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            before = yaml.safe_load(f) or {}
        differs = [k for k in record if before.get(k) != record[k]]
        if differs:
            raise ValueError(
                f"{os.path.dirname(path) or '.'} holds another search (its tune.yaml differs in "
                f"{', '.join(differs)}); resume it with the same job, space, algorithm, objective and seed, "
                "or give a new --output-dir"
            )
    elif write:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(record, f, sort_keys=False)


def _write_best(path: str, job: dict, best: TrialRecord, objective: Objective, values: dict) -> None:
    best_job = apply_values(job, values)
    JobConfig.from_dict(best_job)  # runnable as it is
    header = (
        f"# The best trial of a tfrec tune search: trial {best.trial_id}, {objective.name} = {best.score:.6g} "
        f"({objective.direction}).\n# Its run: {best.run_dir}. Train it with: tfrec train --config {path}\n"
    )
    with open(path, "w", encoding="utf-8") as f:
        f.write(header)
        yaml.safe_dump(best_job, f, sort_keys=False)


def tune(
    job,
    space,
    trials: int = 10,
    algorithm: str = "bayesian",
    output_dir: str | None = None,
    objective: str | Objective | None = None,
    seed: int = 1,
    verbose: int = 1,
) -> TuneResult:
    """Searches the `space` of the `job` config with KerasTuner; resumable (see the module docstring).

    Args:
        job: a job YAML path or its mapping (`JobConfig`'s keys).
        space: a search space YAML path, its mapping, or a `SearchSpace`.
        trials: trials in all, those of earlier runs on `output_dir` included.
        algorithm: `bayesian` (Gaussian-process Bayesian optimisation),
            `hyperband` (budget `training.epochs`) or `random`.
        output_dir: the search's directory (default: the job's `output_dir` + `_tune`).
        objective: `NAME`, `NAME:max|min` or an `Objective` (default `default_objective(job)`).
        seed: the oracle's random seed (>= 1; KerasTuner draws a random one for 0).
        verbose: KerasTuner's trial lines (0 = none).
    """
    raw = _load_job(job)
    try:
        config = JobConfig.from_dict(raw)
    except ValueError as e:
        raise ValueError(f"job config: {e}") from e
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm: unknown {algorithm!r}; one of {', '.join(repr(a) for a in ALGORITHMS)}")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials: must be an integer >= 1, got {trials!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 1:
        raise ValueError(f"seed: must be an integer >= 1, got {seed!r}")
    if isinstance(space, SearchSpace):
        search_space = space
    elif isinstance(space, dict):
        search_space = SearchSpace.from_dict(space)
    else:
        search_space = SearchSpace.from_yaml(space)
    reserved = {}
    if algorithm == "hyperband":
        reserved["training.epochs"] = "Hyperband sets it (its budget; the job's training.epochs is the largest)"
        if config.training.epochs < HYPERBAND_FACTOR:
            raise ValueError(
                f"training.epochs: Hyperband's largest budget per trial must be >= {HYPERBAND_FACTOR} "
                f"(its halving factor), got {config.training.epochs}; raise it or use another algorithm"
            )
    search_space.validate(raw, reserved=reserved)
    if isinstance(objective, Objective):
        goal = objective
    else:
        goal = Objective.parse(objective) if objective else default_objective(config)
    out = output_dir or config.output_dir.rstrip("/\\") + "_tune"
    role = tuner_role()
    record = {
        "job": raw,
        "space": search_space.to_dict(),
        "algorithm": algorithm,
        "objective": str(goal),
        "seed": seed,
    }
    _check_same_search(os.path.join(out, "tune.yaml"), record, write=role != "worker")

    oracle = make_oracle(algorithm, goal, search_space, trials, config.training.epochs, seed)
    tuner = JobTuner(oracle, raw, search_space, goal, out)
    log(
        f"tuning {', '.join(search_space.keys)} by {goal}: {algorithm}, {trials} trial(s) in all, in {out}"
        + ("" if role == "single" else f" ({role} {os.environ['KERASTUNER_TUNER_ID']})")
    )
    tuner.search(verbose=verbose)
    if role == "worker":
        log(f"tuner {os.environ['KERASTUNER_TUNER_ID']}: no trial left; the chief writes best.yaml and the summary")
        return TuneResult(out, goal, [])
    records = tuner.records()
    result = TuneResult(out, goal, records, best=best_trial(records, goal))
    result.summary = write_summary(records, goal, search_space, out, algorithm=algorithm)
    if result.best is not None:
        values = dict(result.best.values)
        if result.best.epochs is not None:
            values["training.epochs"] = result.best.epochs
        result.best_config = os.path.join(out, "best.yaml")
        _write_best(result.best_config, raw, result.best, goal, values)
        log(
            f"best of {sum(t.scored for t in records)} scored trial(s): trial {result.best.trial_id}, "
            f"{goal.name} = {result.best.score:.4g}; config {result.best_config}, summary {result.summary[0]}"
        )
    else:
        log(f"no trial finished with a score; summary {result.summary[0]}")
    return result
