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
            f"Online Retail data not found at {ONLINE_RETAIL} (only CI and "
            "development checkouts have ../shared/data)"
        )
    return ONLINE_RETAIL
