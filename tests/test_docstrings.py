"""The code examples in the docstrings of layers, losses, towers, tasks and models run."""

import importlib
import pathlib
import re
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("layers", "losses", "towers", "tasks", "models")
MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts)
    for package in PACKAGES
    for p in (ROOT / "tfrec" / package).glob("*.py")
    if p.name != "__init__.py"
)
EXAMPLE = re.compile(r"```python\n(.*?)```", re.S)


@pytest.fixture(scope="module")
def namespace():
    """Names the examples use for data: a small simulated log, towers' inputs and a customer table."""
    from tfrec.data.pipeline import dataset_from_dataframe, to_tensors
    from tfrec.data.simulator import SimulatorConfig, simulate
    from tfrec.data.validation import validate
    from tfrec.models import ModelConfig, TextConfig, build_model
    from tfrec.schema import FeatureSchema

    sim = simulate(SimulatorConfig(num_users=80, num_items=40, num_sessions=60, seed=2))
    schema = sim.schema()
    train_df = validate(sim.impressions, schema).valid
    features = {k: tf.constant(v) for k, v in to_tensors(train_df.head(4), schema, labels=False)[0].items()}
    labels = {k: tf.constant(v) for k, v in to_tensors(train_df.head(4), schema)[1].items()}
    model = build_model(
        schema,
        ModelConfig(
            embedding_dim=8,
            id_embedding_dim=4,
            tower_units=[8],
            text=TextConfig(vocabulary_size=200, hidden_dim=8, num_layers=1, num_heads=2),
        ),
        train_df,
    )
    rng = np.random.default_rng(0)
    customers = train_df.drop_duplicates(schema.user_id)[[schema.user_id, "user_segment"]].copy()
    for column in ("recency_days", "frequency", "monetary", "mean_day_spend", "tenure_days"):
        customers[column] = rng.gamma(2.0, 10.0, len(customers))
    customers["future_value"] = rng.gamma(1.0, 20.0, len(customers)) * (rng.random(len(customers)) < 0.6)
    customer_schema = FeatureSchema(
        user_id=schema.user_id,
        user_categorical=["user_segment"],
        user_numeric=["recency_days", "frequency", "monetary"],
        value_label="future_value",
    )
    customer_features = {
        k: tf.constant(v) for k, v in to_tensors(customers.head(3), customer_schema, labels=False)[0].items()
    }
    q = tf.math.l2_normalize(tf.random.stateless_normal([10, 8], seed=[0, 1]), -1)
    return {
        "keras": keras,
        "tf": tf,
        "np": np,
        "schema": schema,
        "train_df": train_df,
        "test_df": train_df.head(20),
        "catalog_df": sim.items,
        "features": features,
        "labels": labels,
        "dataset_from_dataframe": dataset_from_dataframe,
        "user_encoder": model.query_tower.user_encoder,
        "item_encoder": model.item_tower.item_encoder,
        "text_encoder": model.text_encoder,
        "ranking_input": tf.ones([4, 16]),
        "score": tf.zeros([4]),
        "profile": tf.ones([4, 6]),
        "q": q,
        "i": q,
        "ids": tf.range(10, dtype=tf.int64),
        "clicks": tf.ones([10]),
        "customers_df": customers,
        "customer_schema": customer_schema,
        "customer_features": customer_features,
        "train_customers": customers,
        "test_customers": customers,
        "model": model,
    }


def test_every_module_of_these_packages_has_an_example():
    missing = [m for m in MODULES if not EXAMPLE.search(importlib.import_module(m).__doc__ or "")]
    assert not missing, f"modules without a ```python example in their docstring: {missing}"


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name, namespace):
    from tfrec.models import ModelConfig, build_model

    module = importlib.import_module(module_name)
    blocks = [
        b
        for obj in [module]
        + [v for v in vars(module).values() if getattr(v, "__module__", None) == module_name and (v.__doc__ or "")]
        for b in EXAMPLE.findall(obj.__doc__ or "")
    ]
    assert blocks, f"{module_name} has no example"
    for block in blocks:
        scope = {**vars(module), "build_model": build_model, "ModelConfig": ModelConfig, **namespace}
        keras.utils.set_random_seed(0)
        exec(compile(textwrap.dedent(block), f"<{module_name} docstring>", "exec"), scope)  # noqa: S102 (our own docstrings)
