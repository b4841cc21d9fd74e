"""Served equals in-process: every signature of an export, over gRPC and TF Serving's REST API.

`check_served` calls every signature an export of `model` has
(`tfrec.export.saved_model.signature_names`) on `examples`, through a
`ServingClient` (gRPC) and plain `requests` posts in both REST formats
(columnar `inputs` and row `instances`), and compares every output with the
in-process Keras model (`tfrec.models.inference`): `score` with
`predict_dataframe`, `encode_query`/`encode_user` and `encode_item` with the
query and item tower embeddings of that call, `user_value` with
`predict_user_value`, `retrieve` (and `retrieve_by_intent` with no boost
and no filter) with the top k of query embeddings x catalog item embeddings
(`encode_items`; ids and scores), `query_intent` with `predict_intent`. It also asks for the
model's status and metadata over gRPC and REST. Numbers agree to `TOLERANCE`
(max abs difference; REST's JSON numbers read as the output's dtype, as a
client that knows the signature does); retrieved ids are equal (only where two
catalog items score within `TOLERANCE` of each other may they come in either
order).

The server: `local_server`, a `LocalModelServer` in this process (what `tfrec
serve` runs), for one model or several at once. (`tfrec serve` itself, as a
subprocess answering gRPC and REST: tests/test_serving_config.py.)

Example:

```python
with local_server({"tfrec": run_dir / "models" / "tfrec"}) as endpoints:
    check_served(endpoints, "tfrec", model, examples, catalog)
```
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import numpy as np
import requests

TOLERANCE = 1e-5


@dataclasses.dataclass(frozen=True)
class Endpoints:
    """Where a server answers: `grpc` is `host:port`, `rest` is `http://host:port`."""

    grpc: str
    rest: str


@contextlib.contextmanager
def local_server(models):
    """A `LocalModelServer` over `{name: model base path}` (the folder of version folders), gRPC and REST."""
    from tfrec.serving.config import ServedModelConfig
    from tfrec.serving.server import LocalModelServer

    configs = [ServedModelConfig(name, os.path.abspath(str(path))) for name, path in models.items()]
    server = LocalModelServer(models=configs, port=0, http_port=0, poll_seconds=0).start()
    try:
        assert server.ready(), f"not every model loaded: { {n: sorted(m.servables) for n, m in server.models.items()} }"
        yield Endpoints(f"127.0.0.1:{server.port}", f"http://127.0.0.1:{server.http_port}")
    finally:
        server.stop()


# ------------------------------------------------------------------ in-process answers


def expected_outputs(model, examples, catalog=None, k=10):
    """`{signature: {output: array}}` from the in-process model, for the rows of `examples`.

    One `predict_dataframe` call answers `score` and, with the `query_embedding` and `item_embedding` of the same
    towers that `encode_queries` and `encode_items` call, `encode_query`/`encode_user` and `encode_item` (one trace
    of the model instead of three). `retrieve` (where `catalog` is given): the top `k` catalog items
    (`encode_items`) by query x item embedding, `item_ids` as str.
    """
    from tfrec.export.saved_model import has_items, signature_names, user_signature
    from tfrec.models.inference import encode_items, predict_dataframe, predict_user_value

    schema = model.schema
    # The signatures take no position (a training-time feature of the logs).
    rows = examples.drop(columns=[schema.position]) if schema.position in examples.columns else examples
    if not has_items(model):
        value = predict_user_value(model, rows)
        return {"serving_default": value, "user_value": value}
    scored = predict_dataframe(model, rows)
    queries = scored["query_embedding"]
    user_name, user_output = user_signature(schema)
    out = {
        "serving_default": scored,
        "score": scored,
        user_name: {user_output: queries},
        "encode_item": {"item_embedding": scored["item_embedding"]},
    }
    if "user_value" in signature_names(model):
        out["user_value"] = predict_user_value(model, rows)
    if catalog is not None:
        scores = queries @ encode_items(model, catalog).T
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        ids = catalog[schema.item_id].astype(str).to_numpy()
        out["retrieve"] = {
            "item_ids": ids[order],
            "scores": np.take_along_axis(scores, order, axis=1),
            "_catalog_scores": scores,
            "_catalog_ids": ids,
        }
    if "rank" in signature_names(model) and catalog is not None:
        out["rank"] = out["rank_weighted"] = _expected_rank(model, rows, catalog, k)
    if "query_intent" in signature_names(model):  # the intent head's top categories; retrieval by intent, boost 0
        from tfrec.export.saved_model import INTENT_TOP_CATEGORIES
        from tfrec.models.inference import predict_intent

        probabilities = predict_intent(model, rows)
        top = np.argsort(-probabilities, axis=1, kind="stable")[:, : min(INTENT_TOP_CATEGORIES, probabilities.shape[1])]
        names = np.array(model.intent_task.vocabulary, dtype=object)
        out["query_intent"] = {"categories": names[top], "probabilities": np.take_along_axis(probabilities, top, 1)}
        if catalog is not None:
            category = catalog[model.intent_task.category_column].fillna("").astype(str).to_numpy()
            out["retrieve_by_intent"] = {**out["retrieve"], "categories": category[order]}
    return out


def _expected_rank(model, rows, catalog, k):
    """`rank` in process, with the config's weights (`tfrec.evaluation.fusion.rank_candidates`)."""
    from tfrec.evaluation.fusion import rank_candidates, ranking_inputs
    from tfrec.layers.objective_fusion import WEIGHTS, ObjectiveFusion

    schema = model.schema
    relevance_max = float(schema.relevance_range[1]) if schema.relevance_range else 1.0
    fusion = ObjectiveFusion(**{w: getattr(model.config.fusion, w) for w in WEIGHTS}, relevance_max=relevance_max)
    chosen, scores, ctr = rank_candidates(
        model, ranking_inputs(model, rows, catalog), fusion, model.config.fusion.candidates, k
    )
    ids = catalog[schema.item_id].astype(str).to_numpy()
    return {"item_ids": ids[chosen], "scores": scores, "ctr": ctr}


# ------------------------------------------------------------------ JSON


def _jsonable(value):
    value = np.asarray(value)
    if value.dtype == object or value.dtype.kind in "SU":
        decode = np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else str(v), otypes=[object])
        return decode(value).tolist()
    return value.tolist()


def _columns(inputs):
    return {name: _jsonable(v) for name, v in inputs.items()}


def _instances(inputs):
    columns = _columns(inputs)
    n = len(next(iter(columns.values())))
    return [{name: column[i] for name, column in columns.items()} for i in range(n)]


def _from_columnar(body, names):
    outputs = body["outputs"]
    if len(names) == 1 and not isinstance(outputs, dict):  # one output: its values alone (api_rest.md)
        outputs = {names[0]: outputs}
    assert sorted(outputs) == names, (sorted(outputs), names)
    return {name: np.array(v) for name, v in outputs.items()}


def _from_rows(body, names, rows):
    predictions = body["predictions"]
    assert len(predictions) == rows
    if len(names) == 1 and not isinstance(predictions[0], dict):
        return {names[0]: np.array(predictions)}
    assert all(sorted(p) == names for p in predictions), (sorted(predictions[0]), names)
    return {name: np.array([p[name] for p in predictions]) for name in names}


# ------------------------------------------------------------------ comparison


def _compare(where, got, want, reference):
    """Max abs difference of `got` and `want` (asserted below TOLERANCE); strings must be equal."""
    got = np.asarray(got)
    if got.dtype == object or got.dtype.kind in "SU":
        got = np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else str(v), otypes=[object])(got)
        want = np.asarray(want, dtype=object)
        assert got.shape == want.shape, (where, got.shape, want.shape)
        if "_catalog_scores" in reference:  # retrieved ids: equal, but near-ties may come in either order
            column = {item: j for j, item in enumerate(reference["_catalog_ids"])}
            for i, j in zip(*np.nonzero(got != want)):
                message = f"{where}: row {i} rank {j}: {got[i, j]!r}, in process {want[i, j]!r}"
                assert got[i, j] in column, message + " (not in the catalog)"
                assert (
                    abs(reference["_catalog_scores"][i, column[got[i, j]]] - reference["scores"][i, j]) < TOLERANCE
                ), message
        else:
            np.testing.assert_array_equal(got, want, err_msg=where)
        return 0.0
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, (where, got.shape, want.shape)
    diff = float(np.max(np.abs(got.astype(np.float64) - want))) if got.size else 0.0
    assert diff < TOLERANCE, f"{where}: max abs difference {diff:.3g} from the in-process model"
    return diff


def check_served(endpoints, name, model, examples, catalog=None, k=10):
    """Every signature of the served model `name` answers as `model` does, over gRPC and REST (both formats).

    `catalog` is what the export's `retrieve` searches (None for a user-value
    model). Returns `{signature/output/via: max abs difference}`.
    """
    from tfrec.export.saved_model import example_inputs, signature_names
    from tfrec.serving.client import ServingClient

    names = signature_names(model)
    inputs = example_inputs(model, examples, k=k)
    assert sorted(inputs) == sorted(names)
    want = expected_outputs(model, examples, catalog, k=k)
    assert set(names) <= set(want), f"no in-process answer for {sorted(set(names) - set(want))} (catalog missing?)"
    rows = len(examples)
    diffs = {}
    with (
        ServingClient(endpoints.grpc, model_name=name, timeout=60.0, retries=0) as client,
        requests.Session() as session,
    ):
        assert [s["state"] for s in client.status()] == ["AVAILABLE"]
        assert sorted(client.signatures()) == sorted(names)
        status = session.get(f"{endpoints.rest}/v1/models/{name}", timeout=60)
        assert status.status_code == 200, status.text
        assert [s["state"] for s in status.json()["model_version_status"]] == ["AVAILABLE"]
        metadata = session.get(f"{endpoints.rest}/v1/models/{name}/metadata", timeout=60)
        assert metadata.status_code == 200, metadata.text
        signature_defs = metadata.json()["metadata"]["signature_def"]["signature_def"]
        assert sorted(signature_defs) == sorted(names)
        for signature in names:
            assert sorted(signature_defs[signature]["inputs"]) == sorted(inputs[signature]), signature
        url = f"{endpoints.rest}/v1/models/{name}:predict"
        for signature in names:
            given = inputs[signature]
            answers = {"grpc": client.predict(signature, given)}
            outputs = sorted(answers["grpc"])
            assert outputs and set(outputs) <= set(want[signature]), (signature, outputs, sorted(want[signature]))
            columnar = session.post(url, json={"signature_name": signature, "inputs": _columns(given)}, timeout=60)
            assert columnar.status_code == 200, (signature, columnar.text[:500])
            answers["rest inputs"] = _from_columnar(columnar.json(), outputs)
            row = session.post(url, json={"signature_name": signature, "instances": _instances(given)}, timeout=60)
            assert row.status_code == 200, (signature, row.text[:500])
            answers["rest instances"] = _from_rows(row.json(), outputs, rows)
            for via in ("rest inputs", "rest instances"):  # JSON numbers read as the output's dtype (float32)
                for output, value in answers[via].items():
                    if answers["grpc"][output].dtype != object:
                        answers[via][output] = value.astype(answers["grpc"][output].dtype)
            for via, got in answers.items():
                for output in outputs:
                    where = f"{name}/{signature}/{output}/{via}"
                    diffs[where] = _compare(where, got[output], want[signature][output], want[signature])
    return diffs
