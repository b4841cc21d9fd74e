"""TF Serving's REST API (tfrec.serving.rest) over a real LocalModelServer, by plain HTTP.

Bodies are checked against the literal examples of TF Serving's g3doc/api_rest.md and
util/json_tensor_test.cc; a tiny exported tf.Module stands in where the tfrec model's
inputs do not fit an example.
"""

import json
import re
import threading

import numpy as np
import pytest
import requests
import tensorflow as tf

from tfrec.export import export_model
from tfrec.export.saved_model import example_inputs
from tfrec.models.inference import encode_items, encode_queries, predict_dataframe, predict_user_value
from tfrec.serving.client import ServingClient
from tfrec.serving.rest import RestApi, serve_rest
from tfrec.serving.server import LocalModelServer

TOY = "saved_model_half_plus_three"  # the name of api_rest.md's example model


def _jsonable(value):
    """A numpy input as JSON (strings decoded)."""
    value = np.asarray(value)
    if value.dtype == object or value.dtype.kind in "SU":
        return np.vectorize(lambda v: v.decode() if isinstance(v, bytes) else str(v), otypes=[object])(value).tolist()
    return value.tolist()


def _columnar(inputs):
    return {name: _jsonable(v) for name, v in inputs.items()}


def _rows(inputs):
    columns = _columnar(inputs)
    n = len(next(iter(columns.values())))
    return [{name: column[i] for name, column in columns.items()} for i in range(n)]


class Rest:
    """A `requests` session against one REST server."""

    def __init__(self, port, model):
        self.url = f"http://127.0.0.1:{port}"
        self.model = model
        self.session = requests.Session()

    def get(self, path):
        return self.session.get(self.url + path, timeout=60)

    def post(self, path, body):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.session.post(self.url + path, data=data, timeout=60)

    def predict(self, body, model=None, where=""):
        return self.post(f"/v1/models/{model or self.model}{where}:predict", body)


def _start(base, name, **kwargs):
    server = LocalModelServer(base, model_name=name, port=0, poll_seconds=0.2, **kwargs).start()
    http = serve_rest(RestApi(server), "127.0.0.1", 0, {"/healthz": lambda: (200, b"ok\n", "text/plain")})
    return server, http


def _stop(server, http):
    http.shutdown()
    http.server_close()
    server.stop()


@pytest.fixture(scope="module")
def tfrec_rest(small_trained, tmp_path_factory):
    sim, df, model = small_trained
    base = tmp_path_factory.mktemp("rest_tfrec")
    export_model(model, str(base), catalog=sim.items, examples=df.head(4), max_k=20, verbose=False)
    server, http = _start(base, "tfrec", version_labels={"stable": 1})
    client = ServingClient(f"127.0.0.1:{server.port}", timeout=60.0)
    yield sim, df, model, client, Rest(http.server_address[1], "tfrec")
    client.close()
    _stop(server, http)


class Toy(tf.Module):
    """Signatures shaped like api_rest.md's and json_tensor_test.cc's examples."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def half_plus_three(self, x):
        return {"y": 0.5 * x + 3.0}

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32, name="x")])
    def identity(self, x):
        return {"x": tf.identity(x)}

    @tf.function(input_signature=[tf.TensorSpec([None, 1, 2], tf.int32, name="m")])
    def pairs(self, m):
        return {"m": tf.identity(m)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="s")])
    def words(self, s):
        return {"upper": tf.strings.upper(s), "words_bytes": tf.identity(s)}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.string, name="tag"),
            tf.TensorSpec([None, 5], tf.int32, name="signal"),
            tf.TensorSpec([None, 2, 2], tf.int32, name="sensor"),
        ]
    )
    def tag_signal_sensor(self, tag, signal, sensor):
        return {
            "tag": tf.identity(tag),
            "signal_sum": tf.reduce_sum(signal, 1),
            "sensor_max": tf.reduce_max(sensor, [1, 2]),
        }

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.bool, name="flag"), tf.TensorSpec([None], tf.int64, name="count")]
    )
    def mixed(self, flag, count):
        return {"flag": tf.logical_not(flag), "count": count + 1, "third": tf.cast(count, tf.float64) / 3.0}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def uneven(self, x):
        return {"x": tf.identity(x), "first": x[:1]}


class ToyV2(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="x")])
    def twice(self, x):
        return {"y": x * 2}


def _save_toy(base, version, module=None):
    module = module or Toy()
    if isinstance(module, ToyV2):
        signatures = {"serving_default": module.twice}
    else:
        names = ("identity", "pairs", "words", "tag_signal_sensor", "mixed", "uneven")
        signatures = {"serving_default": module.half_plus_three, **{n: getattr(module, n) for n in names}}
    staging = base / f".staging-{version}"  # the server polls the model folder: publish the version whole
    tf.saved_model.save(module, str(staging), signatures=signatures)
    (base / TOY).mkdir(exist_ok=True)
    staging.rename(base / TOY / str(version))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    base = tmp_path_factory.mktemp("rest_toy")
    _save_toy(base, 123)
    server, http = _start(base, TOY, version_labels={"stable": 123})
    yield Rest(http.server_address[1], TOY)
    _stop(server, http)


def _flat(text):
    return re.sub(r"\s", "", text)


# ------------------------------------------------------------------ tfrec model: every signature


def test_every_signature_in_row_and_columnar_format_matches_the_model_and_grpc(tfrec_rest):
    sim, df, model, client, rest = tfrec_rest
    rows = df.sample(12, random_state=3)
    inputs = example_inputs(model, rows, k=10)
    assert {"serving_default", "score", "encode_query", "encode_item", "retrieve"} <= set(inputs)
    for signature, given in inputs.items():
        grpc_out = client.predict(signature, given)
        columnar = rest.predict({"signature_name": signature, "inputs": _columnar(given)})
        row = rest.predict({"signature_name": signature, "instances": _rows(given)})
        assert columnar.status_code == 200 and row.status_code == 200, (signature, columnar.text, row.text)
        assert columnar.headers["Content-Type"] == "application/json"
        outputs, predictions = columnar.json()["outputs"], row.json()["predictions"]
        names = sorted(grpc_out)
        if len(names) == 1:  # one output: no names, values alone (api_rest.md)
            outputs, predictions = {names[0]: outputs}, [{names[0]: p} for p in predictions]
        assert set(outputs) == set(names) and len(predictions) == len(rows)
        for name in names:
            want = grpc_out[name]
            from_rows = np.array([p[name] for p in predictions])
            if want.dtype == object:  # retrieve's item_ids: JSON strings
                decoded = want.astype(bytes).astype(str)
                np.testing.assert_array_equal(np.array(outputs[name]), decoded, err_msg=f"{signature}/{name}")
                np.testing.assert_array_equal(from_rows, decoded, err_msg=f"{signature}/{name}")
            else:
                assert np.abs(np.array(outputs[name]) - want).max() < 1e-5, (signature, name)
                assert np.abs(from_rows - want).max() < 1e-5, (signature, name)
    # ... and equal the in-process model.
    got = rest.predict({"signature_name": "score", "inputs": _columnar(inputs["score"])}).json()["outputs"]
    expected = predict_dataframe(model, rows.drop(columns=["position"]))
    for key in ("ctr", "score", "relevance", "user_value", "value_probability"):
        assert np.abs(np.array(got[key]) - expected[key]).max() < 1e-5, key
    query = rest.predict({"signature_name": "encode_query", "instances": _rows(inputs["encode_query"])}).json()
    assert np.abs(np.array(query["predictions"]) - encode_queries(model, rows)).max() < 1e-5
    item = rest.predict({"signature_name": "encode_item", "inputs": _columnar(inputs["encode_item"])}).json()
    assert np.abs(np.array(item["outputs"]) - encode_items(model, rows)).max() < 1e-5
    if "user_value" in inputs:
        value = rest.predict({"signature_name": "user_value", "inputs": _columnar(inputs["user_value"])}).json()
        assert (
            np.abs(np.array(value["outputs"]["user_value"]) - predict_user_value(model, rows)["user_value"]).max()
            < 1e-5
        )
    top = rest.predict({"signature_name": "retrieve", "inputs": _columnar(inputs["retrieve"])}).json()["outputs"]
    scores = encode_queries(model, rows) @ encode_items(model, sim.items).T
    assert np.abs(np.array(top["scores"]) - (-np.sort(-scores, axis=1)[:, :10])).max() < 1e-5


def test_retrieve_honours_k_per_request_in_both_formats(tfrec_rest):
    _, df, model, client, rest = tfrec_rest
    rows = df.head(3)
    for k in (3, 7):
        given = example_inputs(model, rows, k=k)["retrieve"]
        want = client.predict("retrieve", given)["item_ids"].astype(bytes).astype(str)
        columnar = rest.predict({"signature_name": "retrieve", "inputs": _columnar(given)}).json()["outputs"]
        row = rest.predict({"signature_name": "retrieve", "instances": _rows(given)}).json()["predictions"]
        assert np.array(columnar["item_ids"]).shape == (3, k)
        np.testing.assert_array_equal(columnar["item_ids"], want)
        np.testing.assert_array_equal([p["item_ids"] for p in row], want)
    # An excluded item is not returned.
    given = example_inputs(model, rows.head(1), k=5)["retrieve"]
    first = rest.predict({"signature_name": "retrieve", "inputs": _columnar(given)}).json()["outputs"]["item_ids"][0][0]
    instance = _rows(given)[0] | {"exclude_item_ids": [first]}
    again = rest.predict({"signature_name": "retrieve", "instances": [instance]}).json()["predictions"][0]
    assert first not in again["item_ids"] and len(again["item_ids"]) == 5


# ------------------------------------------------------------------ status and metadata

STATUS_123 = {  # api_rest.md's example answer, verbatim
    "model_version_status": [
        {"version": "123", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
    ]
}


def test_model_status_for_the_model_a_version_and_a_label(tfrec_rest, toy):
    rest = tfrec_rest[-1]
    one = {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    for path in ("/v1/models/tfrec", "/v1/models/tfrec/versions/1", "/v1/models/tfrec/labels/stable"):
        r = rest.get(path)
        assert (r.status_code, r.json()) == (200, one), path
    for path in (
        "/v1/models/saved_model_half_plus_three",
        f"/v1/models/{TOY}/versions/123",
        f"/v1/models/{TOY}/labels/stable",
    ):
        r = toy.get(path)
        assert (r.status_code, r.json()) == (200, STATUS_123), path
    for path in (
        "/v1/models/nope",
        "/v1/models/tfrec/versions/9",
        "/v1/models/nope/metadata",
        "/v1/models/tfrec/versions/9/metadata",
    ):
        r = rest.get(path)
        assert r.status_code == 404 and set(r.json()) == {"error"} and r.json()["error"], path
    r = rest.get("/v1/models")
    assert (r.status_code, r.json()) == (400, {"error": "Missing model name in request."})


def test_metadata_prints_the_signature_defs_as_tf_serving(tfrec_rest, toy):
    rest = tfrec_rest[-1]
    body = rest.get("/v1/models/tfrec/metadata").json()
    assert body["model_spec"] == {"name": "tfrec", "signature_name": "", "version": "1"}
    sigs = body["metadata"]["signature_def"]["signature_def"]
    assert {"serving_default", "score", "encode_query", "encode_item", "retrieve"} <= set(sigs)
    assert sigs["retrieve"]["inputs"]["k"] == {
        "dtype": "DT_INT32",
        "tensor_shape": {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False},
        "name": "retrieve_k:0",
    }
    assert sigs["retrieve"]["outputs"]["item_ids"]["dtype"] == "DT_STRING"
    assert [d["size"] for d in sigs["retrieve"]["inputs"]["user_history"]["tensor_shape"]["dim"]] == ["-1", "-1"]
    assert all(s["method_name"] == "tensorflow/serving/predict" for s in sigs.values())
    assert rest.get("/v1/models/tfrec/labels/stable/metadata").json() == body
    # The toy model's serving_default, in the shape of TF Serving's saved_model_half_plus_two_2_versions_metadata.json.
    body = toy.get(f"/v1/models/{TOY}/versions/123/metadata").json()
    assert body["model_spec"] == {"name": TOY, "signature_name": "", "version": "123"}
    scalar = {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    serving_default = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    output_name = serving_default["outputs"]["y"]["name"]  # the graph's node name, "PartitionedCall_3:0" or so
    assert re.fullmatch(r"(Stateful)?PartitionedCall(_[0-9]+)?:0", output_name)
    assert serving_default == {
        "inputs": {"x": {"dtype": "DT_FLOAT", "tensor_shape": scalar, "name": "serving_default_x:0"}},
        "outputs": {"y": {"dtype": "DT_FLOAT", "tensor_shape": scalar, "name": output_name}},
        "method_name": "tensorflow/serving/predict",
        "defaults": {},
    }


# ------------------------------------------------------------------ api_rest.md and json_tensor_test.cc bodies


def test_the_documented_examples(toy):
    # api_rest.md "Example": curl -d '{"instances": [1.0,2.0,5.0]}' .../saved_model_half_plus_three:predict
    r = toy.predict({"instances": [1.0, 2.0, 5.0]})
    assert (r.status_code, r.json()) == (200, {"predictions": [3.5, 4.0, 5.5]})
    # http_rest_api_handler_test.cc: columnar, with an explicit signature_name; integers for a float input.
    r = toy.predict({"signature_name": "serving_default", "inputs": [3, 4.0]}, where="/versions/123")
    assert r.json() == {"outputs": [4.5, 5.0]}
    assert toy.predict({"inputs": {"x": [1.0]}}, where="/labels/stable").json() == {"outputs": [3.5]}
    # "List of 3 scalar tensors" (one named input: instances are its values); string and _bytes outputs.
    r = toy.predict({"signature_name": "words", "instances": ["foo", "bar", "baz"]})
    assert r.json() == {
        "predictions": [
            {"upper": "FOO", "words_bytes": {"b64": "Zm9v"}},
            {"upper": "BAR", "words_bytes": {"b64": "YmFy"}},
            {"upper": "BAZ", "words_bytes": {"b64": "YmF6"}},
        ]
    }
    # Binary inputs as {"b64": ...} (SingleUnnamedTensorBase64Scalars), columnar answer keyed by output.
    r = toy.predict({"signature_name": "words", "inputs": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]})
    assert r.json() == {
        "outputs": {"upper": ["HELLO", "WORLD"], "words_bytes": [{"b64": "aGVsbG8="}, {"b64": "d29ybGQ="}]}
    }
    # "List of 2 tensors each of [1, 2] shape"
    r = toy.predict({"signature_name": "pairs", "instances": [[[1, 2]], [[3, 4]]]})
    assert r.json() == {"predictions": [[[1, 2]], [[3, 4]]]}
    # The row example with three named inputs (api_rest.md has a stray "]" after the second signal) ...
    rows = [
        {"tag": "foo", "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]},
        {"tag": "bar", "signal": [3, 4, 1, 2, 5], "sensor": [[4, 5], [6, 8]]},
    ]
    r = toy.predict({"signature_name": "tag_signal_sensor", "instances": rows})
    assert r.json() == {
        "predictions": [
            {"sensor_max": 4, "signal_sum": 15, "tag": "foo"},
            {"sensor_max": 8, "signal_sum": 15, "tag": "bar"},
        ]
    }
    # ... and its columnar representation.
    columns = {
        "tag": ["foo", "bar"],
        "signal": [[1, 2, 3, 4, 5], [3, 4, 1, 2, 5]],
        "sensor": [[[1, 2], [3, 4]], [[4, 5], [6, 8]]],
    }
    r = toy.predict({"signature_name": "tag_signal_sensor", "inputs": columns})
    assert r.json() == {"outputs": {"sensor_max": [4, 8], "signal_sum": [15, 15], "tag": ["foo", "bar"]}}


def test_numbers_are_written_as_tf_serving_writes_them(toy):
    # json_tensor_test.cc FromJsonSingleFloatTensorSixDigitPrecision, compared as text.
    r = toy.predict({"signature_name": "identity", "instances": [[9000000, 999999, 0.5], [0.0003, 0.00003, 555557.5]]})
    assert _flat(r.text) == '{"predictions":[[9e+06,999999.0,0.5],[0.0003,3e-05,555557.5]]}'
    # FromJsonSingleFloatTensorNonFinite: NaN and Infinity tokens, in requests too.
    r = toy.predict(b'{"signature_name": "identity", "instances": [[NaN, Infinity], [3, -Infinity]]}')
    assert _flat(r.text) == '{"predictions":[[NaN,Infinity],[3.0,-Infinity]]}'
    # A float32 is written by its shortest digits, not its double expansion; precision loss as documented.
    r = toy.predict({"signature_name": "identity", "inputs": [[0.1, 1435774380]]})
    assert _flat(r.text) == '{"outputs":[[0.1,1.43577434e+09]]}'
    # bool, int64 beyond 2**53 and double.
    r = toy.predict(
        {"signature_name": "mixed", "instances": [{"flag": True, "count": 1}, {"flag": False, "count": 2**60}]}
    )
    assert r.json() == {
        "predictions": [
            {"count": 2, "flag": False, "third": pytest.approx(1 / 3)},
            {"count": 2**60 + 1, "flag": True, "third": pytest.approx(2**60 / 3)},
        ]
    }
    assert '"third": 0.33333333333333331' in r.text  # "%.17g", as WriteDecimal for doubles


def test_rows_must_agree_in_shape_and_outputs_in_batch_size(toy):
    # SingleUnnamedTensorErrors: ragged rows.
    for instances, needle in [
        ([[1, 2], [3, 4], [5, 6, 7]], "Expecting tensor size: 2 but got: 3"),
        ([[1, 2], [3, 4], [[5, 6]]], "Expecting shape [2] but got: [1,2]"),
        ([1, [1]], "Expecting shape [] but got: [1]"),
    ]:
        r = toy.predict({"signature_name": "identity", "instances": instances})
        assert r.status_code == 400 and needle in r.json()["error"], (instances, r.text)
    rows = [{"tag": "a", "signal": [1, 2, 3, 4, 5], "sensor": [[1, 2], [3, 4]]}, [1, 20, 30]]
    r = toy.predict({"signature_name": "tag_signal_sensor", "instances": rows})
    assert "Expecting object but got list at item 1" in r.json()["error"]
    r = toy.predict({"signature_name": "tag_signal_sensor", "instances": ["a", "b"]})
    assert "instances is a plain list, but expecting list of objects" in r.json()["error"]
    r = toy.predict({"signature_name": "tag_signal_sensor", "inputs": ["a", "b"]})
    assert "inputs is a plain value/list, but expecting an object" in r.json()["error"]
    # Outputs of different batch sizes: fine in columnar format, an error in row format (MakeRowFormatJsonFromTensors).
    r = toy.predict({"signature_name": "uneven", "inputs": [1.0, 2.0]})
    assert r.json() == {"outputs": {"first": [1.0], "x": [1.0, 2.0]}}
    r = toy.predict({"signature_name": "uneven", "instances": [1.0, 2.0]})
    assert r.status_code == 400
    assert r.json() == {"error": "Tensor name: x has inconsistent batch size: 2 expecting: 1"}


def test_classify_and_regress_say_tfrec_signatures_are_predict_signatures(tfrec_rest, toy):
    rest = tfrec_rest[-1]
    for verb in ("classify", "regress"):
        r = rest.post(f"/v1/models/tfrec:{verb}", {"examples": [{"query": "red shoes"}]})
        assert r.status_code == 400 and "Predict signatures" in r.json()["error"], r.text
        assert "method_name to be tensorflow/serving/" + verb in r.json()["error"]
    r = toy.post(
        f"/v1/models/{TOY}:regress", {"signature_name": "tensorflow/serving/regress", "examples": [{"x": 1.0}]}
    )
    assert r.status_code == 400 and "No signature was found with the name" in r.json()["error"]
    assert rest.post("/v1/models/nope:classify", {"examples": []}).status_code == 404


# ------------------------------------------------------------------ bad requests


def _bad_requests(model, df):
    score = example_inputs(model, df.head(2))["score"]
    retrieve = example_inputs(model, df.head(2), k=3)["retrieve"]
    columns, rows = _columnar(score), _rows(score)
    yield b'{"instances": [', "JSON Parse error"
    yield b"", "JSON Parse error: The document is empty"
    yield b"instances = [1, 2]", "JSON Parse error: Invalid value."
    yield b"\xff\xfe{}", "JSON Parse error"
    yield b"[1, 2]", "Is not object"
    yield b'{"instances":' + b"[" * 100000 + b"]" * 100000 + b"}", "nested too deeply"
    yield (
        {"signature_name": "score", "inputs": {k: v for k, v in columns.items() if k != "item_price"}},
        ("Missing named input: item_price in 'inputs' object."),
    )
    yield (
        {"signature_name": "score", "instances": [rows[0], {k: v for k, v in rows[1].items() if k != "item_price"}]},
        ("keys must be equal to"),
    )
    yield (
        {"signature_name": "score", "inputs": columns | {"item_price": ["cheap", "dear"]}},
        ('JSON Value: "cheap" Type: String is not of expected type: float'),
    )
    yield {"signature_name": "score", "instances": [rows[0] | {"item_price": "cheap"}]}, "key: item_price"
    yield (
        {"signature_name": "score", "instances": rows, "inputs": columns},
        ("expecting only one of 'inputs' or 'instances' keys"),
    )
    yield {"signature_name": "nope", "inputs": columns}, 'Serving signature name: "nope" not found in signature def'
    yield {"signature_name": 5, "inputs": columns}, "'signature_name' key must be a string value."
    yield {"signature_name": "score"}, "Missing 'inputs' or 'instances' key"
    yield {"signature_name": "score", "instances": {}}, "Expecting 'instances' to be an list/array"
    yield {"signature_name": "score", "instances": []}, "No values in 'instances' array"
    yield {"signature_name": "score", "instances": [rows[0] | {"surprise": 1}]}, "does not have named input: surprise"
    # Ragged instances: user histories of different lengths.
    ragged = [rows[0] | {"user_history": ["i001", "i002"]}, rows[1] | {"user_history": ["i001"]}]
    yield (
        {"signature_name": "score", "instances": ragged},
        (
            "Failed to process element: 1 key: user_history of 'instances' list. "
            "Error: INVALID_ARGUMENT: Expecting tensor size: 2 but got: 1"
        ),
    )
    yield (
        {"signature_name": "score", "inputs": columns | {"user_history": [["i001", "i002"], ["i001"]]}},
        ("Encountered list at unexpected size: 1 at level: 1 expected size: 2"),
    )
    yield {"signature_name": "score", "inputs": columns | {"query": [{"b64": "!!"}, "x"]}}, "Unable to base64 decode"
    yield (
        {"signature_name": "retrieve", "inputs": _columnar(retrieve) | {"k": [2.5, 3]}},
        "is not of expected type: int32",
    )
    # The backend's own checks come back as they are.
    yield {"signature_name": "score", "inputs": columns | {"query": ["", "red shoes"]}}, "empty string"
    yield {"signature_name": "score", "inputs": columns | {"query": [["a"], ["b"]]}}, "input 'query'"


def test_bad_requests_get_400_naming_the_problem_and_the_server_keeps_serving(tfrec_rest):
    _, df, model, _, rest = tfrec_rest
    good = {"signature_name": "score", "inputs": _columnar(example_inputs(model, df.head(2))["score"])}
    for body, needle in _bad_requests(model, df):
        r = rest.predict(body)
        assert r.status_code == 400, (needle, r.status_code, r.text[:300])
        assert r.headers["Content-Type"] == "application/json"
        error = r.json()["error"]
        assert set(r.json()) == {"error"} and needle in error, (needle, error)
        ok = rest.predict(good)  # the next good request succeeds
        assert ok.status_code == 200 and len(ok.json()["outputs"]["ctr"]) == 2


def test_http_status_codes_paths_and_methods(tfrec_rest):
    _, df, model, _, rest = tfrec_rest
    good = {"signature_name": "score", "inputs": _columnar(example_inputs(model, df.head(2))["score"])}
    r = rest.predict(good, model="nope")
    assert r.status_code == 404 and r.json()["error"].startswith("Servable not found for request")
    assert rest.predict(good, where="/versions/9").status_code == 404
    r = rest.predict(good, where="/labels/canary")  # an unknown label is INVALID_ARGUMENT in TF Serving too
    assert r.status_code == 400 and "canary" in r.json()["error"]
    assert rest.predict(good, where="/versions/1").status_code == 200
    assert rest.predict(good, where="/labels/stable").status_code == 200
    assert rest.post("/V1/MODELS/tfrec:predict", good).status_code == 200  # TF Serving's paths ignore case ...
    r = rest.post("/v1/models/tfrec:PREDICT", good)  # ... but not its verbs
    assert (r.status_code, r.json()) == (400, {"error": "Malformed request: POST /v1/models/tfrec:PREDICT"})
    assert rest.get("/v1/models/tfrec?x=1").status_code == 200
    r = rest.get("/v1/models/tfrec:predict")
    assert (r.status_code, r.json()) == (400, {"error": "Malformed request: GET /v1/models/tfrec:predict"})
    for method in ("PUT", "DELETE"):
        r = rest.session.request(method, rest.url + "/v1/models/tfrec", timeout=60)
        assert (r.status_code, r.json()) == (400, {"error": f"Malformed request: {method} /v1/models/tfrec"})
    assert rest.post("/v1/models/tfrec/metadata", b"").status_code == 400
    assert rest.post("/v1/models/tfrec/versions/HELLO:predict", good).status_code == 400
    r = rest.post(f"/v1/models/tfrec/versions/{2**64}:predict", good)
    assert r.status_code == 400 and "Failed to convert version" in r.json()["error"]
    r = rest.get("/index.html")
    assert r.status_code == 404 and "error" in r.json()
    r = rest.get("/healthz")  # extra routes
    assert (r.status_code, r.text, r.headers["Content-Type"]) == (200, "ok\n", "text/plain")
    r = rest.session.options(rest.url + "/v1/models/tfrec", headers={"Origin": "http://example.com"}, timeout=60)
    assert r.status_code == 200


def test_concurrent_requests_get_their_own_answers(tfrec_rest):
    _, df, model, client, rest = tfrec_rest
    bodies = [example_inputs(model, df.iloc[i : i + 2], k=2 + i)["retrieve"] for i in range(6)]
    want = [client.predict("retrieve", b)["item_ids"].astype(bytes).astype(str).tolist() for b in bodies]
    got = [None] * 6

    def send(i):
        session = Rest(rest.url.rsplit(":", 1)[1], "tfrec")
        got[i] = session.predict({"signature_name": "retrieve", "inputs": _columnar(bodies[i])}).json()["outputs"]

    threads = [threading.Thread(target=send, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [g["item_ids"] for g in got] == want


def test_a_new_version_is_served_with_its_own_signatures(tmp_path):
    _save_toy(tmp_path, 123)
    server, http = _start(tmp_path, TOY)
    try:
        rest = Rest(http.server_address[1], TOY)
        assert rest.predict({"instances": [1, 2]}).json() == {"predictions": [3.5, 4.0]}
        _save_toy(tmp_path, 124, ToyV2())  # serving_default now takes int32
        for _ in range(300):
            if len(rest.get(f"/v1/models/{TOY}").json()["model_version_status"]) == 2:
                break
            threading.Event().wait(0.1)
        r = rest.predict({"instances": [1, 2]})
        assert r.json() == {"predictions": [2, 4]}, r.text  # int32 in and out: v124's dtypes were used
        assert rest.predict({"instances": [1, 2]}, where="/versions/123").json() == {"predictions": [3.5, 4.0]}
        r = rest.predict({"instances": [1.5]})
        assert r.status_code == 400 and "is not of expected type: int32" in r.json()["error"]
    finally:
        _stop(server, http)
