"""The local server under faults: corrupt versions, requests that claim huge shapes, non-finite numbers,
label-flooding metrics, and hot swaps under load.

One exported model (version 1 of `exported`) is copied into each test's base path as the versions it
needs; a corrupt version is a copy with a truncated `saved_model.pb`.
"""

import json
import logging
import shutil
import socket
import threading
import time
import tracemalloc

import grpc
import numpy as np
import pytest
import requests
import tensorflow as tf
from tensorflow_serving.apis import get_model_status_pb2, predict_pb2

from tfrec.export import export_model
from tfrec.export.saved_model import example_inputs
from tfrec.serving.client import ServingClient, ServingError
from tfrec.serving.server import LocalModelServer, RequestError

DATA_LOSS = grpc.StatusCode.DATA_LOSS.value[0]


@pytest.fixture(scope="module")
def exported(small_trained, tmp_path_factory):
    """(the folder of one exported version, df, model)."""
    sim, df, model = small_trained
    base = tmp_path_factory.mktemp("faults_export")
    export_model(model, str(base), catalog=sim.items, examples=df.head(4), max_k=10, verbose=False)
    return base / "tfrec" / "1", df, model


def _publish(base, version, source, corrupt=False):
    """Copies `source` to `base/tfrec/<version>` whole (staged, then renamed); `corrupt`: truncated pb."""
    (base / "tfrec").mkdir(parents=True, exist_ok=True)
    staging = base / f".staging-{version}"
    shutil.copytree(source, staging)
    if corrupt:
        pb = staging / "saved_model.pb"
        pb.write_bytes(pb.read_bytes()[:100_000])
    staging.rename(base / "tfrec" / str(version))


def _status(port, name="tfrec"):
    """{version: (state name, error code, error message)} from GetModelStatus."""
    from tensorflow_serving.apis import model_service_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = name
        response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=30)
    state = get_model_status_pb2.ModelVersionStatus.State.Name
    return {
        s.version: (state(s.state), s.status.error_code, s.status.error_message) for s in response.model_version_status
    }


def _wait(condition, seconds=60.0):
    deadline = time.time() + seconds
    while time.time() < deadline and not condition():
        time.sleep(0.05)
    return condition()


def _failed_attempts(caplog, version):
    return [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.name == "tfrec.serving"
        and '"version_load_failed"' in r.getMessage()
        and json.loads(r.getMessage())["version"] == version
    ]


# ------------------------------------------------------------------ corrupt versions


def test_a_corrupt_version_blocks_no_newer_one_shows_in_the_status_and_is_retried(exported, tmp_path, caplog):
    source, df, model = exported
    caplog.set_level(logging.INFO, logger="tfrec.serving")
    for version in (1, 2, 3, 4):
        _publish(tmp_path, version, source, corrupt=version == 3)
    server = LocalModelServer(
        tmp_path,
        port=0,
        http_port=0,
        keep_versions=2,
        poll_seconds=0.1,
        max_num_load_retries=2,
        load_retry_interval_s=0.3,
    ).start()
    client = ServingClient(f"127.0.0.1:{server.port}", timeout=30, retries=0)
    try:
        # The policy (latest 2) chooses among the versions that load: 2 and 4; 1 is unloaded.
        assert sorted(server.servables) == [2, 4]
        inputs = example_inputs(model, df.head(2))["score"]
        assert client.predict("score", inputs, return_version=True)[1] == 4
        status = _status(server.port)
        assert sorted(status) == [2, 3, 4]
        assert status[2][:2] == status[4][:2] == ("AVAILABLE", 0)
        state, code, message = status[3]
        assert (state, code) == ("END", DATA_LOSS) and "saved_model.pb" in message, status[3]
        rest = requests.get(f"http://127.0.0.1:{server.http_port}/v1/models/tfrec", timeout=30).json()
        (bad,) = [s for s in rest["model_version_status"] if s["version"] == "3"]
        assert bad["state"] == "END" and bad["status"]["error_code"] == "DATA_LOSS", bad
        assert "Wire format was corrupt" in bad["status"]["error_message"]
        rest_3 = requests.get(f"http://127.0.0.1:{server.http_port}/v1/models/tfrec/versions/3", timeout=30)
        assert rest_3.status_code == 200 and rest_3.json()["model_version_status"][0]["state"] == "END"
        # Retried max_num_load_retries (2) times, logged once per attempt, then left alone.
        assert _wait(lambda: server.load_failures()[3].next_retry is None, 30)
        time.sleep(1.0)  # ten more polls: no more attempts, no more log lines
        attempts = _failed_attempts(caplog, 3)
        assert [a["attempt"] for a in attempts] == [1, 2, 3], attempts
        assert server.load_failures()[3].attempts == 3
        # Repaired files are tried at once (retries spent or not): 3 and 4 served, 2 unloaded.
        shutil.copyfile(source / "saved_model.pb", tmp_path / "tfrec" / "3" / "saved_model.pb")
        assert _wait(lambda: sorted(server.servables) == [3, 4], 60), sorted(server.servables)
        assert server.load_failures() == {}
        assert {v: s[0] for v, s in _status(server.port).items()} == {3: "AVAILABLE", 4: "AVAILABLE"}
    finally:
        client.close()
        server.stop()


def test_tfrec_serve_starts_on_the_good_versions_while_a_corrupt_one_is_on_disk(
    exported, tmp_path, monkeypatch, capsys
):
    from tfrec.cli import main

    source, df, model = exported
    _publish(tmp_path, 2, source)
    _publish(tmp_path, 3, source, corrupt=True)  # the newest version, the one TF Serving's default policy picks
    started = []
    monkeypatch.setattr(LocalModelServer, "wait", lambda self: started.append(self))
    t = time.time()
    code = main(
        [
            "serve",
            "--port=0",
            "--model_name=tfrec",
            f"--model_base_path={tmp_path / 'tfrec'}",
            "--file_system_poll_wait_seconds=0",
            "--enable_model_warmup=false",
        ]
    )
    seconds = time.time() - t
    (server,) = started
    try:
        out, err = capsys.readouterr()
        assert code == 0 and "serving tfrec on 127.0.0.1:" in out
        assert "no version of 'tfrec'" not in err, err
        assert sorted(server.servables) == [2] and seconds < 50  # no wait for a version that never loads
        status = _status(server.port)
        assert status[2][0] == "AVAILABLE" and status[3][:2] == ("END", DATA_LOSS)
        with ServingClient(f"127.0.0.1:{server.port}", timeout=30, retries=0) as client:
            assert client.predict("score", example_inputs(model, df.head(2))["score"], return_version=True)[1] == 2
    finally:
        server.stop()


# ------------------------------------------------------------------ requests


@pytest.fixture(scope="module")
def served(exported, tmp_path_factory):
    source, df, model = exported
    base = tmp_path_factory.mktemp("faults_served")
    _publish(base, 1, source)
    server = LocalModelServer(
        base, port=0, http_port=0, poll_seconds=0, max_request_rows=8, max_input_width=64, max_request_bytes=1 << 20
    ).start()
    client = ServingClient(f"127.0.0.1:{server.port}", timeout=30, retries=0)
    yield server, client, df, model
    client.close()
    server.stop()


def _request(model, df, signature="score"):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tfrec"
    request.model_spec.signature_name = signature
    for name, value in example_inputs(model, df.head(2))[signature].items():
        value = np.asarray(value)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value.astype(bytes) if value.dtype == object else value))
    return request


def _claiming(request, name, shape, values, dtype):
    """`request` with input `name` replaced by a tensor claiming `shape` but holding `values`."""
    proto = request.inputs[name]
    proto.Clear()
    proto.dtype = dtype.as_datatype_enum
    for n in shape:
        proto.tensor_shape.dim.add(size=n)
    if dtype == tf.string:
        proto.string_val.extend(values)
    else:
        proto.float_val.extend(values)
    return request


def test_small_requests_claiming_huge_shapes_are_refused_before_any_array_is_built(served):
    server, client, df, model = served
    good = _request(model, df)
    cases = [
        # 200,000,000 floats claimed by a request of a few hundred bytes
        ("item_price", [200_000_000], [1.0], tf.float32, "rows exceeds the limit of 8 (max_request_rows)"),
        # a history 3,000,000 wide, one string given
        ("user_history", [2, 3_000_000], [b"i001"], tf.string, "exceeds the limit of 64 (max_input_width)"),
        # a shape that holds more values than given (TensorFlow would repeat the last one)
        ("item_price", [2], [1.0], tf.float32, "holds 2 values, but the tensor has 1"),
        ("user_history", [2, 3], [b"a", b"b"], tf.string, "holds 6 values, but the tensor has 2"),
        ("item_price", [], [1.0], tf.float32, "expects rank 1"),
    ]
    for name, shape, values, dtype, needle in cases:
        request = _claiming(_request(model, df), name, shape, values, dtype)
        assert request.ByteSize() < 1000
        tracemalloc.start()
        t = time.time()
        with pytest.raises(grpc.RpcError) as err:
            client.prediction.Predict(request, timeout=30)
        seconds, (_, peak) = time.time() - t, tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (name, shape, err.value.details())
        assert f"input '{name}'" in err.value.details() and needle in err.value.details(), err.value.details()
        assert peak < 32 << 20 and seconds < 5, (name, shape, peak, seconds)
        assert tf.make_ndarray(client.prediction.Predict(good, timeout=30).outputs["ctr"]).shape == (2,)
    # The claimed bytes of all values count too, before any is read.
    proto = tf.make_tensor_proto(np.zeros(3, np.float32))
    proto.tensor_shape.dim[0].size = 1_000_000
    spec = tf.TensorSpec([None], tf.float32)
    lenient = LocalModelServer("/nonexistent", port=0, max_request_rows=10**9)  # 16 MiB, not started
    with pytest.raises(RequestError, match="claims 5000000 values, over the limit of 16777216 bytes"):
        lenient._check_claimed_shape("item_price", _scaled(proto, 5_000_000), spec)
    with pytest.raises(RequestError, match="holds 1000000 values, but the tensor has 3"):
        lenient._check_claimed_shape("item_price", proto, spec)


def _scaled(proto, rows):
    out = type(proto)()
    out.CopyFrom(proto)
    out.tensor_shape.dim[0].size = rows
    return out


def test_limits_are_flags_of_tfrec_serve():
    import argparse

    from tfrec.serving.config import ServingConfigError
    from tfrec.serving.flags import add_serve_arguments, ignored_flags, server_from_args

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    line = ["--model_base_path=/tmp/x/tfrec", "--max_request_rows=16", "--max_input_width=100"]
    line += ["--max_request_bytes=4096", "--max_num_load_retries=1", "--load_retry_interval_micros=250000"]
    args = parser.parse_args(line)
    assert ignored_flags(args) == []  # the retry flags are applied, not ignored
    server = server_from_args(args)
    assert (server.max_request_rows, server.max_input_width, server.max_request_bytes) == (16, 100, 4096)
    assert (server.max_num_load_retries, server.load_retry_interval_s) == (1, 0.25)
    default = server_from_args(parser.parse_args(["--model_base_path=/tmp/x/tfrec"]))
    assert (default.max_input_width, default.max_num_load_retries, default.load_retry_interval_s) == (4096, 5, 60.0)
    with pytest.raises(ServingConfigError, match="--max_input_width must be at least 1"):
        server_from_args(parser.parse_args(["--model_base_path=/tmp/x/tfrec", "--max_input_width=0"]))
    with pytest.raises(ServingConfigError, match="max_num_load_retries"):
        LocalModelServer("/tmp/x", max_num_load_retries=-1)


def test_infinity_is_refused_naming_the_input_and_nan_stays_a_missing_value(served):
    server, client, df, model = served
    inputs = example_inputs(model, df.head(2))["score"]
    for bad in (np.inf, -np.inf):
        for name in ("item_price", "user_tenure_days"):
            x = dict(inputs, **{name: np.array([1.0, bad], np.float32)})
            with pytest.raises(ServingError) as err:
                client.predict("score", x)
            assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert f"input '{name}'" in err.value.details and "not a finite number" in err.value.details
    # NaN is how a client says "unknown" (the model imputes it and sees a missing flag): served, finite.
    missing = client.predict("score", dict(inputs, item_price=np.array([np.nan, 1.0], np.float32)))
    assert np.isfinite(missing["score"]).all() and np.isfinite(missing["ctr"]).all()
    # REST: TF Serving's bare Infinity token, in both formats.
    columns = {k: (v.astype(str) if v.dtype == object else v).tolist() for k, v in inputs.items()}
    columns["item_price"] = [float("inf"), 1.0]
    url = f"http://127.0.0.1:{server.http_port}/v1/models/tfrec:predict"
    answer = requests.post(url, data=json.dumps({"signature_name": "score", "inputs": columns}), timeout=30)
    assert answer.status_code == 400 and "input 'item_price'" in answer.json()["error"], answer.text
    rows = [{k: v[i] for k, v in columns.items()} for i in range(2)]
    answer = requests.post(url, data=json.dumps({"signature_name": "score", "instances": rows}), timeout=30)
    assert answer.status_code == 400 and "not a finite number" in answer.json()["error"], answer.text


def test_rest_refuses_huge_bodies_and_lists_with_400_and_keeps_serving(served):
    server, client, df, model = served
    inputs = example_inputs(model, df.head(2))["score"]
    columns = {k: (v.astype(str) if v.dtype == object else v).tolist() for k, v in inputs.items()}
    url = f"http://127.0.0.1:{server.http_port}/v1/models/tfrec:predict"

    def post(body):
        return requests.post(url, data=body if isinstance(body, bytes) else json.dumps(body), timeout=30)

    good = {"signature_name": "score", "inputs": columns}
    # A body over max_request_bytes (1 MiB here): refused unread.
    big = post(json.dumps(good).encode() + b" " * (2 << 20))
    assert big.status_code == 400 and "max_request_bytes" in big.json()["error"], big.text
    # A Content-Length of a terabyte: answered at once, nothing read.
    with socket.create_connection(("127.0.0.1", server.http_port), timeout=10) as sock:
        sock.sendall(b"POST /v1/models/tfrec:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n{")
        answer, chunk = b"", b"-"
        while chunk:  # the server answers and closes the connection
            chunk = sock.recv(4096)
            answer += chunk
        head = answer.decode()
    assert head.startswith("HTTP/1.1 400") and "max_request_bytes" in head, head
    # Lists over the limits: refused from their shape, before any value is converted.
    wide = dict(columns, user_history=[["i001"] * 65, ["i002"] * 65])
    answer = post({"signature_name": "score", "inputs": wide})
    assert answer.status_code == 400 and "input 'user_history'" in answer.json()["error"], answer.text
    assert "max_input_width" in answer.json()["error"]
    tall = {k: v * 5 for k, v in columns.items()}  # 10 rows
    answer = post({"signature_name": "score", "inputs": tall})
    assert answer.status_code == 400 and "max_request_rows" in answer.json()["error"], answer.text
    rows = [{k: v[i % 2] for k, v in columns.items()} for i in range(9)]
    answer = post({"signature_name": "score", "instances": rows})
    assert answer.status_code == 400 and "max_request_rows" in answer.json()["error"], answer.text
    ok = post(good)
    assert ok.status_code == 200 and len(ok.json()["outputs"]["score"]) == 2


def test_metric_labels_come_from_fixed_sets(served):
    server, client, df, model = served
    for i in range(30):
        request = _request(model, df)
        request.model_spec.signature_name = f"flood_{i}"
        with pytest.raises(grpc.RpcError):
            client.prediction.Predict(request, timeout=30)
    url = f"http://127.0.0.1:{server.http_port}"
    for i in range(5):
        requests.post(f"{url}/v1/models/tfrec:predict", data=json.dumps({"signature_name": f"rest_{i}"}), timeout=30)
    client.predict("score", example_inputs(model, df.head(2))["score"])
    metrics = requests.get(url + "/monitoring/prometheus/metrics", timeout=30).text
    assert "flood_" not in metrics and "rest_" not in metrics
    assert 'tfrec_requests_total{method="Predict",signature="unknown"} 30' in metrics
    assert 'tfrec_requests_total{method="Predict",signature="score"}' in metrics
    assert 'tfrec_errors_total{method="Predict",code="INVALID_ARGUMENT"}' in metrics
    server.metrics.observe("/no.such/Method", "x" * 100, "BOGUS", 0.001)
    labels = server.metrics.render()
    assert "no.such" not in labels and "BOGUS" not in labels
    assert 'tfrec_errors_total{method="other",code="UNKNOWN"} 1' in labels


# ------------------------------------------------------------------ load


def test_hot_swaps_under_load_with_a_corrupt_version_between(exported, tmp_path, capsys):
    """Clients send requests while versions 2 (good), 3 (corrupt) and 4 (good) appear."""
    source, df, model = exported
    _publish(tmp_path, 1, source)
    server = LocalModelServer(tmp_path, port=0, keep_versions=1, poll_seconds=0.1).start()
    inputs = example_inputs(model, df.head(2))["score"]
    seen, failures, latencies = [], [], []
    stop = threading.Event()

    def hammer():
        with ServingClient(f"127.0.0.1:{server.port}", timeout=30, retries=0) as c:
            while not stop.is_set():
                t = time.perf_counter()
                try:
                    seen.append(c.predict("score", inputs, return_version=True)[1])
                    latencies.append(time.perf_counter() - t)
                except ServingError as e:
                    failures.append(str(e))
                time.sleep(0.01)  # closed loop with a short think time: loads get a share of the 2 cores

    threads = [threading.Thread(target=hammer) for _ in range(3)]
    phases = {}
    t0 = time.time()
    for t in threads:
        t.start()
    try:
        assert _wait(lambda: len(seen) >= 5, 60)
        t = time.time()
        _publish(tmp_path, 2, source)
        assert _wait(lambda: seen and seen[-1] == 2, 60)
        phases["swap_to_2_s"], t = round(time.time() - t, 1), time.time()
        _publish(tmp_path, 3, source, corrupt=True)
        assert _wait(lambda: 3 in server.load_failures(), 30)
        phases["corrupt_3_failed_s"] = round(time.time() - t, 1)
        time.sleep(0.3)
        t = time.time()
        _publish(tmp_path, 4, source)
        assert _wait(lambda: seen and seen[-1] == 4 and sorted(server.servables) == [4], 60)
        phases["swap_to_4_s"] = round(time.time() - t, 1)
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join()
    seconds = time.time() - t0
    status = _status(server.port)
    server.stop()
    report = {
        "clients": len(threads),
        "seconds": round(seconds, 1),
        "requests": len(seen) + len(failures),
        "failures": len(failures),
        "versions_seen": {v: seen.count(v) for v in sorted(set(seen))},
        "p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 1),
        "p99_ms": round(float(np.percentile(latencies, 99)) * 1000, 1),
        **phases,
        "status": {v: s[:2] for v, s in status.items()},
    }
    with capsys.disabled():
        print(f"\nhot swaps under load: {json.dumps(report)}")
    assert failures == [], failures[:3]
    assert set(seen) == {1, 2, 4} and seen[-1] == 4
    assert status[4][0] == "AVAILABLE" and status[3][:2] == ("END", DATA_LOSS) and "saved_model.pb" in status[3][2]
