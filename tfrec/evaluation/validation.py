"""`ranking_validation`: NDCG@K per validation query after every training epoch (search tables).

Validation losses say little about ranking: a relevance head can be badly
calibrated and still order every query's results well, and the reverse. For
search tables a job also scores the validation rows with the ranking head
(relevance for graded labels, else CTR at the top position) and reports mean
graded NDCG@K per query (`grouped_ndcg`, as the test evaluation). With
`training.monitor: val_ndcg@10` the best epoch (or the untrained start of a
model built on a pretrained encoder) is the one kept.

Example:

```python
metric = ranking_validation(schema, valid_df, k=10)   # None where valid_df has no query groups
scores = metric(model) if metric else {}              # {"ndcg@10": ...}
```
"""

from __future__ import annotations

import numpy as np

from tfrec.data import shapes as S
from tfrec.evaluation.metrics import grouped_ndcg
from tfrec.models.inference import features_of, predictor


def ranking_validation(schema, valid_df, k: int = 10, min_rows: int = 2):
    """`model -> {"ndcg@k": mean NDCG@k}` over the validation queries, or None (no queries or no ranking label)."""
    if valid_df is None or len(valid_df) == 0 or S.QUERY_KEY_COLUMN not in valid_df:
        return None
    label = schema.relevance_label or schema.click_label
    if not label:
        return None
    output = "relevance" if schema.relevance_label else "ctr"
    low = schema.relevance_range[0] if schema.relevance_label else 0.0
    rows = valid_df.copy()
    if output == "ctr" and schema.position:
        rows[schema.position] = 1  # ranked as if each item had the top slot, as the test evaluation does
    gains = rows[label].to_numpy(dtype=np.float64) - low
    groups = rows[S.QUERY_KEY_COLUMN].to_numpy()
    traced: dict = {}  # one traced predictor per model, reused every epoch

    def metric(model):
        if output not in model.task_names:
            return {}
        if id(model) not in traced:
            traced.clear()
            traced[id(model)] = (model, predictor(model, (output,)), features_of(rows, model.schema))
        _, predict, features = traced[id(model)]
        scores = predict(features)[output]
        value, _ = grouped_ndcg(groups, gains, scores, k, min_rows=min_rows)
        return {f"ndcg@{k}": value}

    return metric
