"""The summary of a tuning search: `summary.png` and a self-contained `summary.html`.

The figure has one panel with the objective of every trial in the order the
trials ran (and the best so far), then one panel per tuned key: the
objective against the key's value (a log axis where the key is sampled on a
log scale; choices and booleans as categories), the best trial starred. The
HTML page holds the figure inline (base64 PNG) and a table of every trial:
its status, objective, values, Hyperband epochs and run directory.

Example:

```python
space = SearchSpace.from_dict({"training.learning_rate": {"type": "float", "min": 1e-4, "max": 1e-2}})
trials = [
    TrialRecord("0", "COMPLETED", 0.31, {"training.learning_rate": 1e-3}, "runs/tune/trials/trial_0"),
    TrialRecord("1", "COMPLETED", 0.35, {"training.learning_rate": 3e-3}, "runs/tune/trials/trial_1"),
]
write_summary(trials, Objective("retrieval.model.recall@50", "max"), space, "runs/tune")
# -> ("runs/tune/summary.html", "runs/tune/summary.png")
```
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import html
import math
import os

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tfrec.tuning.objective import Objective
from tfrec.tuning.space import Param, SearchSpace

__all__ = ["TrialRecord", "best_trial", "write_summary"]


@dataclasses.dataclass
class TrialRecord:
    """One trial as the summary shows it.

    Args:
        trial_id: KerasTuner's trial id.
        status: KerasTuner's status (`COMPLETED`, `RUNNING`, `FAILED`, `INVALID`, ...).
        score: the objective's value (None where the trial has none).
        values: `{config key: value}` the trial ran with.
        run_dir: the trial's run directory.
        epochs: the Hyperband budget (`training.epochs`) of the trial; None otherwise.
        message: the error of a failed trial (its last line is shown).
    """

    trial_id: str
    status: str
    score: float | None
    values: dict
    run_dir: str
    epochs: int | None = None
    message: str | None = None

    @property
    def scored(self) -> bool:
        return self.status == "COMPLETED" and self.score is not None and math.isfinite(self.score)


def _scores(trials: list[TrialRecord]) -> list[tuple[TrialRecord, float]]:
    """(trial, score) of the trials with a score."""
    return [(t, float(t.score)) for t in trials if t.scored and t.score is not None]


def best_trial(trials: list[TrialRecord], objective: Objective) -> TrialRecord | None:
    """The completed trial with the best score (the first of equals), or None."""
    best: tuple[TrialRecord, float] | None = None
    for t, score in _scores(trials):
        if best is None or objective.better(score, best[1]):
            best = (t, score)
    return best[0] if best else None


def _categorical(param: Param, values: list) -> bool:
    return param.kind in ("choice", "bool") or not all(isinstance(v, (int, float)) for v in values)


def _label(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _figure(trials: list[TrialRecord], objective: Objective, space: SearchSpace) -> Figure:
    keys = space.keys
    panels = 1 + len(keys)
    columns = min(3, panels)
    rows = math.ceil(panels / columns)
    fig = Figure(figsize=(4.2 * columns, 3.3 * rows))
    FigureCanvasAgg(fig)
    scored = _scores(trials)
    best = best_trial(trials, objective)

    ax = fig.add_subplot(rows, columns, 1)
    order = {t.trial_id: i for i, t in enumerate(trials)}
    xs = [order[t.trial_id] for t, _ in scored]
    ys = [score for _, score in scored]
    ax.plot(xs, ys, "o", color="#1f77b4", label="trial")
    running: list[float] = []
    for y in ys:
        running.append(y if not running or objective.better(y, running[-1]) else running[-1])
    if xs:
        ax.step(xs, running, where="post", color="#ff7f0e", label="best so far")
    for t, score in scored:
        if t is best:
            ax.plot([order[t.trial_id]], [score], "*", color="#d62728", markersize=14, label="best")
    failed = [order[t.trial_id] for t in trials if not t.scored]
    if failed and ys:
        ax.plot(failed, [min(ys)] * len(failed), "x", color="#7f7f7f", label="no score")
    ax.set_xlabel("trial (in the order run)")
    ax.set_ylabel(objective.name)
    ax.set_title(f"objective per trial ({objective.direction})")
    ax.legend(fontsize=7)

    for n, key in enumerate(keys, start=2):
        ax = fig.add_subplot(rows, columns, n)
        param = space.param(key)
        points = [(t.values[key], score, t is best) for t, score in scored if key in t.values]
        values = [v for v, _, _ in points]
        x: list
        if _categorical(param, values):
            categories = [_label(v) for v in param.candidates()]
            position = {c: i for i, c in enumerate(categories)}
            x = [position.get(_label(v), 0) for v in values]
            ax.set_xticks(range(len(categories)), categories, rotation=20, fontsize=8)
            ax.set_xlim(-0.5, len(categories) - 0.5)
        else:
            x = values
            if param.sampling in ("log", "reverse_log"):
                ax.set_xscale("log")
        ax.plot(x, [s for _, s, _ in points], "o", color="#1f77b4")
        for xi, (_, s, is_best) in zip(x, points):
            if is_best:
                ax.plot([xi], [s], "*", color="#d62728", markersize=14)
        ax.set_xlabel(key + (" (log scale)" if ax.get_xscale() == "log" else ""))
        ax.set_ylabel(objective.name)
    fig.tight_layout()
    return fig


def write_summary(
    trials: list[TrialRecord], objective: Objective, space: SearchSpace, out_dir, algorithm: str = ""
) -> tuple[str, str]:
    """Writes `out_dir/summary.png` and `out_dir/summary.html`; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    png_path, html_path = os.path.join(out_dir, "summary.png"), os.path.join(out_dir, "summary.html")
    _figure(trials, objective, space).savefig(png_path, format="png", dpi=100, bbox_inches="tight")
    with open(png_path, "rb") as f:
        png = base64.b64encode(f.read()).decode("ascii")
    best = best_trial(trials, objective)
    keys = space.keys
    hyperband = any(t.epochs is not None for t in trials)
    head = ["trial", "status", objective.name] + keys + (["epochs"] if hyperband else []) + ["run directory"]
    rows = []
    for t in trials:
        cells = [
            t.trial_id + (" (best)" if t is best else ""),
            t.status + (f": {t.message.strip().splitlines()[-1]}" if t.message and not t.scored else ""),
            f"{t.score:.6g}" if t.scored and t.score is not None else "-",
            *(_label(t.values[k]) if k in t.values else "-" for k in keys),
            *([str(t.epochs) if t.epochs is not None else "-"] if hyperband else []),
        ]
        link = os.path.relpath(t.run_dir, out_dir)
        row = "".join(f"<td>{html.escape(c)}</td>" for c in cells)
        row += f'<td><a href="{html.escape(link)}/">{html.escape(link)}</a></td>'
        rows.append(f"<tr{' class=best' if t is best else ''}>{row}</tr>")
    verdict = (
        f"Best: trial {html.escape(best.trial_id)}, {html.escape(objective.name)} = {float(best.score or 0):.6g} "
        f"({html.escape(objective.direction)}imised); its config is <code>best.yaml</code> "
        "(<code>tfrec train --config best.yaml</code>)."
        if best
        else "No trial has finished with a score yet."
    )
    done = sum(t.scored for t in trials)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tfrec tune: {html.escape(objective.name)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 80em; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
td, th {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }}
tr.best {{ background: #fff3c4; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Hyperparameter search</h1>
<p>{done} of {len(trials)} trial(s) scored by <code>{html.escape(objective.name)}</code>
({html.escape(objective.direction)}){f", {html.escape(algorithm)} search" if algorithm else ""};
written {datetime.datetime.now().strftime("%Y-%m-%d %H:%M")}. {verdict}</p>
<figure><img alt="objective per trial and per tuned key" src="data:image/png;base64,{png}">
<figcaption>Left: the objective of each trial in the order run, with the best so far.
Then one panel per tuned key: the objective against the key's value; the star is the best trial.</figcaption>
</figure>
<h2>Trials</h2>
<table><tr>{"".join(f"<th>{html.escape(h)}</th>" for h in head)}</tr>
{chr(10).join(rows)}
</table>
</body></html>
"""
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(page)
    return html_path, png_path
