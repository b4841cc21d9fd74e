"""Tasks: one training objective each, owning its head, loss and metrics.

| task | label | outputs | loss | metric |
| --- | --- | --- | --- | --- |
| `RetrievalTask` | click or relevance (positives) | (uses the tower embeddings) | in-batch softmax | |
| `CtrTask` | click | `ctr`, `ctr_logit` | binary cross-entropy | AUC |
| `RelevanceTask` | relevance | `relevance` | squared error | RMSE |
| `UserValueTask` | value | `user_value`, `value_logits` (+ `value_probability`) | ZILN / MSE / Huber | RMSE |
| `QueryIntentTask` | clicked item's category | `intent_probabilities`, `intent_logits` | softmax CE | top-1/3 hits |
"""

from tfrec.schema import is_relevant
from tfrec.tasks.ctr import CtrTask
from tfrec.tasks.query_intent import QueryIntentTask
from tfrec.tasks.relevance import RelevanceTask
from tfrec.tasks.retrieval import RetrievalTask
from tfrec.tasks.task import Task
from tfrec.tasks.user_value import UserValueTask

__all__ = ["CtrTask", "QueryIntentTask", "RelevanceTask", "RetrievalTask", "Task", "UserValueTask", "is_relevant"]
