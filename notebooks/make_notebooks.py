"""Writes the notebooks of this folder, with no outputs, from the cells below.

The cells here are the source of truth: edit them, then run

    python notebooks/make_notebooks.py

and commit the regenerated `.ipynb` files (outputs stay out of git; the test
`tests/test_notebooks.py` checks that they are stripped and runs them).
"""

from __future__ import annotations

import pathlib

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = pathlib.Path(__file__).resolve().parent

SETUP = """\
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore", category=UserWarning)  # Keras notes on unused heads, tf.data shuffling

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

# TFREC_NOTEBOOK_SMALL=1 (the test suite sets it) shrinks data and training to seconds.
SMALL = os.environ.get("TFREC_NOTEBOOK_SMALL") == "1"
print("small configuration" if SMALL else "full configuration")"""

SMALL_MODEL = """\
SMALL_MODEL = {"embedding_dim": 16, "id_embedding_dim": 8, "tower_units": [32], "expert_units": [16],
               "text": {"vocabulary_size": 300, "hidden_dim": 16, "num_layers": 1, "num_heads": 2,
                        "query_sequence_length": 6, "item_sequence_length": 8}}
MODEL = SMALL_MODEL if SMALL else {
    "embedding_dim": 32, "id_embedding_dim": 16, "tower_units": [128], "expert_units": [64], "id_dropout": 0.5,
    "text": {"vocabulary_size": 600, "hidden_dim": 32, "num_layers": 1, "num_heads": 2,
             "query_sequence_length": 8, "item_sequence_length": 10}}"""


def notebook_01():
    return [
        new_markdown_cell("""\
# 1. Simulated data: explore, train a small model, evaluate

The embedded simulator draws an e-commerce search log with planted truth: every impression's true click
probability, every user's true expected value. This notebook looks at the data, trains a small two-tower
multi-task model with `tfrec.jobs.simulated.run` (the quickstart job), and reads its evaluation: CTR, user
value, retrieval and the business value of its rankings against popularity, random and the oracle.

It runs in under a minute on 2 CPU cores with `TFREC_NOTEBOOK_SMALL=1` (as in the test suite) and in a few
minutes without."""),
        new_code_cell(SETUP),
        new_markdown_cell("## The data"),
        new_code_cell("""\
from tfrec.data import SimulatorConfig, simulate

sim_config = (SimulatorConfig(num_users=400, num_items=150, num_sessions=500, seed=4) if SMALL
              else SimulatorConfig(num_users=4000, num_items=1000, num_sessions=15000, seed=0))
sim = simulate(sim_config)
pd.Series(sim.summary()).to_frame("value")"""),
        new_code_cell("""\
sim.impressions[["query", "user_id", "item_title", "item_price", "position", "click", "true_ctr"]].head()"""),
        new_markdown_cell("""\
Clicks are `examination(position) x attractiveness`: lower positions are seen less often, so the logged
click rate falls with the position even where the items are as good. Each user's future value is
zero-inflated lognormal: most users spend nothing, a few spend a lot."""),
        new_code_cell("""\
imp = sim.impressions
by_position = imp.groupby("position").agg(observed=("click", "mean"), true=("true_ctr", "mean"))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), layout="constrained")
ax1.plot(by_position.index, by_position.observed, marker="o", label="observed click rate")
ax1.plot(by_position.index, by_position.true, marker=".", ls="--", label="mean true CTR")
ax1.set(title="Click rate by display position", xlabel="position (1 = top)", ylabel="click rate (share)")
ax1.legend()
value = sim.users.future_value
ax2.hist(np.log10(value[value > 0]), bins=30)
ax2.set(title=f"Future value of spending users ({(value == 0).mean():.0%} spend nothing)",
        xlabel="log10 future value (currency units)", ylabel="users")
plt.show()"""),
        new_markdown_cell("""\
## Train

`run` validates and time-splits the log, trains, evaluates against the oracle and the baselines, prints
the one-screen summary and writes the run directory (`model.keras`, `metrics.json`, `report.html`, ...)."""),
        new_code_cell(SMALL_MODEL),
        new_code_cell("""\
import dataclasses

from tfrec.jobs.config import JobConfig
from tfrec.jobs.simulated import run

config = JobConfig.from_dict({
    "simulator": dataclasses.asdict(sim_config),
    "model": MODEL,
    "training": {"epochs": 1 if SMALL else 3, "batch_size": 128 if SMALL else 256, "verbose": 0,
                 "tensorboard": False},
    "evaluation": {"ks": [5, 10, 20] if SMALL else [10, 50, 100], "max_queries": 200 if SMALL else 2000},
    "export": {"enabled": False},
    "output_dir": "runs/notebook01",
})
result = run(config)"""),
        new_markdown_cell("""\
## Evaluate

The metrics of each task, for the model, the oracle (the simulator's truth: the best achievable) and a
baseline."""),
        new_code_cell("""\
metrics = result["metrics"]
pd.DataFrame({k: v for k, v in metrics["ctr"].items()}).T"""),
        new_code_cell("""\
pd.DataFrame({k: v for k, v in metrics["value"].items() if isinstance(v, dict)}).T"""),
        new_markdown_cell("""\
Business value: for each test query the whole catalog is ranked and the top K shown; expected clicks@K and
expected revenue@K (per 1,000 queries) use the true click probabilities and the simulator's examination
curve. `share_of_oracle` is how much of the achievable value a ranker captures."""),
        new_code_cell("""\
business = metrics["business"]
k = business["ks"][1]
pd.DataFrame({name: {"clicks": row[f"clicks@{k}"], "clicks share of oracle": row[f"clicks_share_of_oracle@{k}"],
                     "revenue": row[f"revenue@{k}"], "revenue share of oracle": row[f"revenue_share_of_oracle@{k}"]}
              for name, row in business.items() if isinstance(row, dict)}).T.round(3)"""),
        new_markdown_cell("""\
The arrays behind the metrics come back too (`result["evaluation"]`), so any curve can be redrawn with
`tfrec.evaluation.curves`:"""),
        new_code_cell("""\
from tfrec.evaluation import recall_curve, roc_curve

evaluation = result["evaluation"]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained")
for name, p in evaluation.ctr_predictions.items():
    fpr, tpr = roc_curve(evaluation.ctr_labels, p)
    ax1.plot(fpr, tpr, label=f"{name} (AUC {metrics['ctr'][name]['auc']:.3f})")
ax1.plot([0, 1], [0, 1], ls=":", color="grey")
ax1.set(title="ROC of click prediction", xlabel="false positive rate", ylabel="true positive rate")
ax1.legend()
for name, ranks in evaluation.retrieval_ranks.items():
    ks, recall = recall_curve(ranks, max(evaluation.ks))
    ax2.plot(ks, recall, label=name)
ax2.set(title="Recall@K over the whole catalog", xlabel="K (items retrieved)", ylabel="Recall@K (share)")
ax2.legend()
plt.show()"""),
        new_markdown_cell("""\
The same evaluation, with every figure explained, is in the self-contained report the job wrote
(`tfrec evaluate --run-dir runs/notebook01` writes it again from the run directory)."""),
        new_code_cell("""\
report = os.path.join(config.output_dir, "report.html")
print(f"{os.path.abspath(report)}: {os.path.getsize(report) / 1e3:.0f} kB")"""),
    ]


def notebook_02():
    return [
        new_markdown_cell("""\
# 2. Export, serve over gRPC, query

Train a small model, export it in TensorFlow Serving's layout, start the local gRPC server (the same
PredictionService API as TF Serving, so the same client works against both) and retrieve items for a few
test queries.

Runs in under a minute on 2 CPU cores with `TFREC_NOTEBOOK_SMALL=1`."""),
        new_code_cell(SETUP),
        new_code_cell(SMALL_MODEL),
        new_markdown_cell("""\
## Train

Simulate, validate and time-split the log, then train with `tfrec.training.train_model` (the training
step of the quickstart job, without its evaluation: notebook 1 covers that)."""),
        new_code_cell("""\
from tfrec.data import simulate, time_split, validate
from tfrec.jobs.config import JobConfig
from tfrec.training import train_model

config = JobConfig.from_dict({
    "simulator": ({"num_users": 400, "num_items": 150, "num_sessions": 500, "seed": 4} if SMALL
                  else {"num_users": 4000, "num_items": 1000, "num_sessions": 15000, "seed": 0}),
    "model": MODEL,
    "training": {"epochs": 1 if SMALL else 3, "batch_size": 128 if SMALL else 256, "verbose": 0,
                 "tensorboard": False},
    "output_dir": "runs/notebook02",
})
sim = simulate(config.simulator)
split = time_split(validate(sim.impressions, sim.schema()).valid, sim.schema(),
                   valid_fraction=config.valid_fraction, test_fraction=config.test_fraction)
model, history = train_model(config, sim.schema(), split.train, split.valid)
print(split.sizes())"""),
        new_markdown_cell("""\
## Export

`export_model` writes `<base_dir>/tfrec/<version>/` atomically, with the catalog embedded for the
`retrieve` signature and warm-up requests."""),
        new_code_cell("""\
from tfrec.export import export_model

base_dir = os.path.join(config.output_dir, "models")
export = export_model(model, base_dir, catalog=sim.items, examples=split.test.head(8), max_k=20, verbose=False)
print(export.path, f"{export.size_bytes / 1e6:.1f} MB", "signatures:", ", ".join(export.signatures))"""),
        new_markdown_cell("""\
## Serve and query over gRPC

`LocalModelServer` serves the base directory (port 0 picks a free port); `ServingClient` speaks TF
Serving's gRPC API."""),
        new_code_cell("""\
from tfrec.serving import LocalModelServer, ServingClient

server = LocalModelServer(base_dir, model_name="tfrec", port=0).start()
client = ServingClient(f"127.0.0.1:{server.port}", model_name="tfrec", timeout=30)
print(client.status())
{name: sorted(sig["inputs"]) for name, sig in client.signatures().items()}"""),
        new_markdown_cell(
            "Retrieve the top 5 items of the whole catalog for three test queries that ended in a click:"
        ),
        new_code_cell("""\
queries = split.test[split.test.click == 1].drop_duplicates("query").head(3)
top = client.retrieve(queries, k=5)
titles = sim.items.set_index("item_id").item_title
for row, (_, q) in zip(queries.index, queries.iterrows()):
    hits = top[top.row == row].assign(title=lambda d: d.item_id.map(titles),
                                      clicked=lambda d: d.item_id == q["item_id"])
    print(f'query "{q["query"]}" (user {q["user_id"]}, clicked "{q["item_title"]}")')
    print(hits[["rank", "title", "score", "clicked"]].to_string(index=False), end="\\n\\n")"""),
        new_markdown_cell(
            "Score user-item pairs: CTR at the top position, two-tower score, the user's expected value:"
        ),
        new_code_cell("""\
pairs = split.test.head(8)
served = client.score(pairs)
pd.concat([pairs[["query", "item_title"]].reset_index(drop=True), served], axis=1)"""),
        new_code_cell("""\
client.close()
server.stop()"""),
    ]


def notebook_03():
    return [
        new_markdown_cell("""\
# 3. Online Retail: user value against simple baselines

The UCI Online Retail data (a UK gift retailer's invoices, 2010-12 to 2011-12): `load_online_retail`
builds customer features from the calibration period (up to 2011-08-31) and labels each customer with their
net spend in the horizon (2011-09-01 to 2011-12-09). A small value-only model (ZILN head on the customer
features) is compared with two simple baselines:

* **scaled spend**: the customer's calibration spend scaled to the horizon's length;
* **RFM regression**: least squares of horizon spend on log recency, frequency, monetary value, tenure and
  distinct items.

The data is not shipped with tfrec: the notebook reads `../shared/data/online_retail.parquet` (or the file
in `TFREC_ONLINE_RETAIL`) and stops at the first cell with instructions when it is absent; the test suite
skips it there. Under a minute on 2 CPU cores."""),
        new_code_cell(SETUP),
        new_code_cell("""\
from tfrec.data.online_retail import SOURCE_URL, find_online_retail, load_online_retail

try:
    path = find_online_retail()
except FileNotFoundError as e:
    raise SystemExit(f"This notebook needs the Online Retail file ({SOURCE_URL}); {e}") from None
data = load_online_retail(path)
pd.Series(data.summary()).to_frame("value")"""),
        new_markdown_cell("""\
Customers are split at random (seed 0) into 75% for fitting and 25% for evaluation; every number below is
on the evaluation customers, whose labels no model saw."""),
        new_code_cell("""\
customers = data.customers
held_out = np.random.default_rng(0).random(len(customers)) < 0.25
train_c, test_c = customers[~held_out].reset_index(drop=True), customers[held_out].reset_index(drop=True)
y_test = test_c.future_value.to_numpy()
print(f"{len(train_c)} customers to fit, {len(test_c)} to evaluate; "
      f"{(y_test == 0).mean():.0%} of these spend nothing in the horizon")
customers.head()"""),
        new_markdown_cell("## Baselines"),
        new_code_cell("""\
calibration_days = (data.cutoff - data.events.event_time.min().normalize()).days + 1
horizon_days = (data.horizon_end - data.cutoff).days
scaled_spend = test_c.monetary.to_numpy() * horizon_days / calibration_days

RFM = ["recency_days", "frequency", "monetary", "tenure_days", "n_items"]

def rfm_matrix(df):
    return np.column_stack([np.ones(len(df))] + [np.log1p(df[c].to_numpy(dtype=float)) for c in RFM])

coef, *_ = np.linalg.lstsq(rfm_matrix(train_c), train_c.future_value.to_numpy(), rcond=None)
rfm_regression = np.maximum(rfm_matrix(test_c) @ coef, 0.0)
print(f"calibration {calibration_days} days, horizon {horizon_days} days")"""),
        new_markdown_cell("""\
## A value-only model

`build_model` on the customers' schema builds a model with no item side: only the user encoder (country,
log-scaled RFM numerics) and the zero-inflated lognormal value head, trained on the value loss alone."""),
        new_code_cell("""\
import keras

from tfrec.data.pipeline import dataset_from_dataframe
from tfrec.data.validation import validate
from tfrec.models import ModelConfig, build_model
from tfrec.models.inference import predict_user_value

schema = data.customers_schema()
keras.utils.set_random_seed(0)
train_rows = validate(train_c, schema).valid
model = build_model(schema, ModelConfig(use_text=False, value_loss="ziln", value_detach_profile=False,
                                        embedding_dim=16, id_embedding_dim=8, tower_units=[32], expert_units=[16],
                                        loss_weights={"retrieval": 0, "ctr": 0, "value": 1, "relevance": 0}),
                    train_rows)
model.compile(optimizer=keras.optimizers.Adam(3e-3))
history = model.fit(dataset_from_dataframe(train_rows, schema, batch_size=128, seed=0),
                    epochs=20 if SMALL else 30, verbose=0)
model_value = predict_user_value(model, test_c)["user_value"]
print(f"final training loss {history.history['loss'][-1]:.3f}")"""),
        new_markdown_cell("""\
## Compare

Normalised Gini (ordering customers by value, 1 = perfect), Spearman rank correlation, decile MAPE (error
of the mean prediction per predicted decile) and AUC of "spends at all"."""),
        new_code_cell("""\
from tfrec.evaluation import value_metrics

predictions = {"model": model_value, "scaled_spend": scaled_spend, "rfm_regression": rfm_regression}
comparison = pd.DataFrame(value_metrics(y_test, predictions)).T
comparison.round(3)"""),
        new_code_cell("""\
from tfrec.evaluation import metrics as M

fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True, layout="constrained")
for ax, (name, p) in zip(axes, predictions.items()):
    table = M.decile_table(y_test, p)
    ax.bar(table.decile - 0.2, table.mean_actual, width=0.4, label="actual")
    ax.bar(table.decile + 0.2, table.mean_predicted, width=0.4, label="predicted")
    ax.set(title=f"{name} (Gini {comparison.loc[name, 'normalized_gini']:.2f})",
           xlabel="predicted decile (1 = highest)", xticks=table.decile)
axes[0].set_ylabel("mean horizon spend per customer (GBP)")
axes[0].legend()
plt.show()"""),
        new_markdown_cell("""\
The HTML report works for a single section too: sections without data say so.
"""),
        new_code_cell("""\
from tfrec.evaluation import EvaluationResult, write_report

os.makedirs("runs/notebook03", exist_ok=True)
value_result = EvaluationResult(
    metrics={"value": {**value_metrics(y_test, predictions), "users": len(y_test)}}, ks=[10],
    value_labels=y_test, value_predictions=predictions,
    context={"data": f"UCI Online Retail, {len(test_c)} evaluation customers", "currency": "GBP",
             "baselines": "scaled calibration spend; RFM regression"})
path = write_report(value_result, "runs/notebook03/report.html", title="Online Retail: customer value")
print(path)"""),
    ]


NOTEBOOKS = {
    "01_simulated_train_evaluate.ipynb": notebook_01,
    "02_export_serve_grpc.ipynb": notebook_02,
    "03_online_retail_user_value.ipynb": notebook_03,
}


def main():
    for name, cells in NOTEBOOKS.items():
        cells = cells()
        for i, cell in enumerate(cells):
            cell["id"] = f"cell-{i:02d}"  # stable ids: regenerating changes only edited cells
        nb = new_notebook(
            cells=cells,
            metadata={
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                "language_info": {"name": "python"},
            },
        )
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
