"""Does the text matter? Retrieval of items held out of training entirely.

A share of the catalog is removed from the training log (never seen: their ids
are out of vocabulary at evaluation). The same configuration is trained twice,
with the BERT towers and id/attribute-only, and both retrieve over the whole
catalog for test clicks on the held-out items.

Example:

```python
result = run(JobConfig.from_yaml("training/configs/quickstart.yaml"))
result["ratio"]   # recall@K with text / recall@K without
```
"""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any

import numpy as np
import pandas as pd

from tfrec.console import log as _log
from tfrec.data.simulator import simulate
from tfrec.data.split import time_split
from tfrec.data.validation import validate
from tfrec.evaluation import metrics as M
from tfrec.jobs.config import JobConfig
from tfrec.jobs.pipeline import train
from tfrec.models.inference import encode_items, encode_queries


def held_out_items(item_ids, fraction, seed) -> set:
    rng = np.random.default_rng(seed)
    ids = np.asarray(item_ids)
    return set(ids[rng.random(len(ids)) < fraction])


def run(config: JobConfig, held_out_fraction: float = 0.15, k: int = 50) -> dict:
    """Trains with and without text; returns recall@k on held-out items for both."""
    sim = simulate(config.simulator)
    schema = sim.schema()
    rows = validate(sim.impressions, schema).valid
    split = time_split(rows, schema, valid_fraction=config.valid_fraction, test_fraction=config.test_fraction)
    cold = held_out_items(sim.items.item_id, held_out_fraction, config.simulator.seed + 1)
    train_df = split.train[~split.train.item_id.isin(cold)].reset_index(drop=True)
    valid_df = split.valid[~split.valid.item_id.isin(cold)].reset_index(drop=True)
    test = split.test[(split.test.click == 1) & split.test.item_id.isin(cold)]
    test = test.drop_duplicates(["session_id", "item_id"])
    if len(test) > config.evaluation.max_queries:
        test = test.sample(config.evaluation.max_queries, random_state=0)
    catalog = sim.items
    target = pd.Series(np.arange(len(catalog)), index=catalog.item_id)[test.item_id].to_numpy()
    _log(f"cold start: {len(cold)} items never in training; {len(test)} test clicks on them")
    result: dict[str, Any] = {"held_out_items": len(cold), "queries": len(test), "k": k}
    for name, use_text in (("text", True), ("id_only", False)):
        cfg = copy.deepcopy(config)
        cfg.model = dataclasses.replace(cfg.model, use_text=use_text)
        t = time.time()
        model, _ = train(cfg, schema, train_df, valid_df)
        ranks = M.ranks_of_targets(encode_queries(model, test), encode_items(model, catalog), target)
        result[name] = {
            f"recall@{k}": M.recall_at_k(ranks, k),
            "recall@10": M.recall_at_k(ranks, 10),
            "mrr": M.mrr(ranks),
            "train_seconds": time.time() - t,
        }
        _log(f"{name}: recall@{k} {result[name][f'recall@{k}']:.4f} on never-seen items")
    base = max(result["id_only"][f"recall@{k}"], 1e-9)
    result["ratio"] = result["text"][f"recall@{k}"] / base
    _log(f"recall@{k} with text / id-only = {result['ratio']:.2f}")
    return result
