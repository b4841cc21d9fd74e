import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
ONLINE_RETAIL = REPO.parent / "shared" / "data" / "online_retail.parquet"


@pytest.fixture(scope="session")
def online_retail_path():
    if not ONLINE_RETAIL.exists():
        pytest.skip(
            f"Online Retail data not found at {ONLINE_RETAIL} (only CI and development checkouts have ../shared/data)"
        )
    return ONLINE_RETAIL


@pytest.fixture(scope="session")
def small_trained():
    """A briefly trained small model on small simulated data: (sim, rows, model)."""
    import keras

    from tfrec.data.pipeline import dataset_from_dataframe
    from tfrec.data.simulator import SimulatorConfig, simulate
    from tfrec.data.validation import validate
    from tfrec.models import ModelConfig, TextConfig, build_model

    sim = simulate(SimulatorConfig(num_users=400, num_items=150, num_sessions=400, seed=4))
    df = validate(sim.impressions, sim.schema()).valid
    keras.utils.set_random_seed(0)
    text = TextConfig(
        vocabulary_size=300, hidden_dim=16, num_layers=1, num_heads=2, query_sequence_length=6, item_sequence_length=8
    )
    model = build_model(
        sim.schema(),
        ModelConfig(embedding_dim=16, id_embedding_dim=8, tower_units=[32], expert_units=[16], text=text),
        df,
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(dataset_from_dataframe(df, sim.schema(), batch_size=128, drop_remainder=True).take(5), verbose=0)
    return sim, df, model


@pytest.fixture(scope="session")
def small_export(small_trained, tmp_path_factory):
    """`small_trained` exported once for the session: the base folder holding `tfrec/1/` (read-only by contract)."""
    from tfrec.export import export_model

    sim, df, model = small_trained
    base = tmp_path_factory.mktemp("small_export")
    export_model(model, str(base), catalog=sim.items, examples=df.head(8), max_k=20, verbose=False)
    return base


@pytest.fixture(scope="session")
def tiny_bert_preset(tmp_path_factory):
    """A tiny BERT saved as a keras-hub preset directory: a fast stand-in for a pretrained checkpoint (MiniLM)."""
    import keras_hub

    from tfrec.layers.text_encoder import TextEncoder

    corpus = ["red heart mug", "blue lunch bag", "white candle holder", "christmas lights", "jumbo shopper"] * 4
    enc = TextEncoder.from_scratch(corpus, vocabulary_size=150, hidden_dim=16, num_layers=1, num_heads=2)
    path = tmp_path_factory.mktemp("tiny_bert_preset")
    enc.backbone.save_to_preset(str(path))
    keras_hub.models.BertTokenizer(vocabulary=enc.tokenizer.get_vocabulary(), lowercase=True).save_to_preset(str(path))
    return str(path)
