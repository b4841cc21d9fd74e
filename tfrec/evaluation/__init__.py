"""Evaluation: metrics, evaluators, business value of rankings, curve data, the HTML report, the summary.

`tfrec.evaluation.metrics` defines every metric once; the evaluators score a
model on simulator data (`tfrec.evaluation.simulated`, beside the oracle) or
on the user's own tables (`tfrec.evaluation.tables`, beside baselines), both
into an `EvaluationResult` that `write_report` and the summaries read.
Evaluation never imports the jobs; re-evaluating a run directory (`tfrec
evaluate`) is the jobs' `tfrec.jobs.evaluate`. Importing `tfrec.evaluation`
does not import TensorFlow.

Example:

```python
from tfrec.evaluation import business_value, write_report
from tfrec.evaluation.simulated import evaluate_simulated

result = evaluate_simulated(model, sim, split, ks=[10, 50, 100])
write_report(result, "report.html")
```
"""

from tfrec.evaluation.business import (
    business_value,
    examination_curve,
    expected_clicks_at_k,
    expected_revenue_at_k,
    oracle_rankings,
    random_ranking,
    top_k,
)
from tfrec.evaluation.curves import (
    cumulative_gain_curve,
    recall_curve,
    reliability_curve,
    roc_curve,
)
from tfrec.evaluation.metric_sets import ctr_metrics, ranking_metrics, value_metrics
from tfrec.evaluation.report import SECTIONS, render_report, write_report
from tfrec.evaluation.result import EvaluationResult
from tfrec.evaluation.summary import format_summary, print_summary

__all__ = [
    "SECTIONS",
    "EvaluationResult",
    "business_value",
    "ctr_metrics",
    "cumulative_gain_curve",
    "examination_curve",
    "expected_clicks_at_k",
    "expected_revenue_at_k",
    "format_summary",
    "oracle_rankings",
    "print_summary",
    "random_ranking",
    "ranking_metrics",
    "recall_curve",
    "reliability_curve",
    "render_report",
    "roc_curve",
    "top_k",
    "value_metrics",
    "write_report",
]
