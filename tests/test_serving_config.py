"""TF Serving's flags and configuration files: parsed as TF Serving does, applied by the local server."""

import argparse
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from tfrec.serving.config import (
    ServedModelConfig,
    ServingConfigError,
    VersionPolicy,
    models_from_flags,
    parse_batching_parameters,
    parse_model_config,
    parse_monitoring_config,
    read_batching_parameters,
    read_model_config_file,
    read_monitoring_config,
)
from tfrec.serving.flags import add_serve_arguments, ignored_flags, map_base_paths, server_from_args

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def test_bundled_serving_files_parse_as_tf_serving_reads_them():
    (latest,) = read_model_config_file(str(REPO / "serving/models.latest.config"))
    assert latest == ServedModelConfig("tfrec", "/models/tfrec", VersionPolicy("latest", 1))
    (labelled,) = read_model_config_file(str(REPO / "serving/models.config"))
    assert labelled.version_policy == VersionPolicy("specific", 0, (1, 2))
    assert labelled.version_labels == {"stable": 1, "canary": 2}
    batching = read_batching_parameters(str(REPO / "serving/batching_parameters.txt"))
    assert (batching.max_batch_size, batching.batch_timeout_micros, batching.pad_variable_length_inputs) == (
        256,
        2000,
        True,
    )
    assert read_monitoring_config(str(REPO / "serving/monitoring.config")) == "/monitoring/prometheus/metrics"


def test_version_policies_select_like_tf_serving():
    available = [1, 2, 3, 7]
    assert VersionPolicy("latest", 2).select(available) == [3, 7]
    assert VersionPolicy("all").select(available) == available
    assert VersionPolicy("specific", 0, (2, 5)).select(available) == [2]
    (m,) = parse_model_config(
        'model_config_list { config { name: "a" base_path: "/m/a" model_version_policy { all {} } } }'
    )
    assert m.version_policy.kind == "all"
    (m,) = parse_model_config('model_config_list { config { name: "a" base_path: "/m/a" } }')
    assert m.version_policy == VersionPolicy("latest", 1)  # TF Serving's default policy


@pytest.mark.parametrize(
    "text, message",
    [
        ('model_config_list { config { name: "a" base_path: "models/a" } }', "absolute path"),
        ('model_config_list { config { name: "a" base_path: "/m" } config { name: "a" base_path: "/n" } }', "twice"),
        ('model_config_list { config { name: "a" base_path: "/m" model_platform: "pytorch" } }', "model_platform"),
        ('model_config_list { config { nmae: "a" } }', "nmae"),
        (
            'model_config_list { config { name: "a" base_path: "/m" model_version_policy { specific {} } } }',
            "no versions",
        ),
        ("", "model_config_list"),
    ],
)
def test_bad_model_config_is_refused_naming_the_field(text, message):
    with pytest.raises(ServingConfigError, match=message):
        parse_model_config(text, "models.config")


def test_bad_batching_and_monitoring_files_are_refused(tmp_path):
    with pytest.raises(ServingConfigError, match="max_batch_sise"):
        parse_batching_parameters("max_batch_sise { value: 3 }", "b.txt")
    with pytest.raises(ServingConfigError, match="max_batch_size must be >= 1"):
        parse_batching_parameters("max_batch_size { value: 0 }", "b.txt")
    assert parse_monitoring_config("prometheus_config { enable: false }") is None
    assert parse_monitoring_config("prometheus_config { enable: true }") == "/monitoring/prometheus/metrics"
    with pytest.raises(ServingConfigError, match="cannot be read"):
        read_monitoring_config(str(tmp_path / "missing.config"))


def test_flags_and_path_mapping():
    (m,) = models_from_flags("tfrec", "relative/models/tfrec")
    assert m.name == "tfrec" and m.base_path.startswith("/")
    with pytest.raises(ServingConfigError, match="model_base_path"):
        models_from_flags("tfrec", None)
    (m,) = map_base_paths([ServedModelConfig("tfrec", "/models/tfrec")], ["/models=/srv/exports"])
    assert m.base_path == "/srv/exports/tfrec"
    (m,) = map_base_paths([ServedModelConfig("tfrec", "/modelsX/tfrec")], ["/models=/srv/exports"])
    assert m.base_path == "/modelsX/tfrec"  # only whole path components
    with pytest.raises(ServingConfigError, match="FROM=TO"):
        map_base_paths([], ["/models"])
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args(
        ["--model_name=x", "--model_base_path=/tmp/x", "--enable_batching", "--rest_api_num_threads=4"]
    )
    assert args.enable_batching is True and ignored_flags(args) == ["rest_api_num_threads"]
    args = parser.parse_args(["--model_name=x", "--model_base_path=/tmp/x", "--enable_batching=false"])
    assert args.enable_batching is False
    args = parser.parse_args(
        ["--model_base_path=/tmp/x", f"--batching_parameters_file={REPO / 'serving/batching_parameters.txt'}"]
    )
    with pytest.raises(ServingConfigError, match="enable_batching"):
        server_from_args(args)
    with pytest.raises(SystemExit):
        parser.parse_args(["--model_base_path=/tmp/x", "--no_such_flag=1"])


@pytest.fixture(scope="module")
def two_versions(small_trained, tmp_path_factory):
    """An export (version 1) and a copy of it (version 2) under base/tfrec."""
    from tfrec.export import export_model

    sim, df, model = small_trained
    base = tmp_path_factory.mktemp("config_serving")
    export_model(model, str(base), catalog=sim.items, examples=df.head(4), max_k=10, verbose=False)
    shutil.copytree(base / "tfrec" / "1", base / "tfrec" / "2")
    return base, df, model


def _versions(target, name):
    from tfrec.serving.client import ServingClient

    with ServingClient(target, model_name=name, timeout=30) as client:
        return sorted(s["version"] for s in client.status())


def _predict(target, name, inputs, **spec):
    from tfrec.serving.client import ServingClient

    with ServingClient(target, model_name=name, timeout=30, retries=0, **spec) as client:
        return client.predict("score", inputs, return_version=True)


def test_model_config_file_policies_labels_and_reload_while_serving(two_versions, tmp_path):
    from tfrec.export.saved_model import example_inputs
    from tfrec.serving.client import ServingError
    from tfrec.serving.server import LocalModelServer

    base, df, model = two_versions
    config = tmp_path / "models.config"
    # serving/models.config (versions 1 and 2, labelled stable and canary) plus a
    # second model that serves the newest version of the same folder.
    text = (REPO / "serving/models.config").read_text().replace('"/models/tfrec"', f'"{base}/tfrec"')
    other = f'  config {{ name: "other" base_path: "{base}/tfrec" }}\n'
    config.write_text(text.rstrip().rstrip("}") + other + "}\n")
    server = LocalModelServer(
        model_config_file=str(config), config_poll_seconds=0.2, poll_seconds=0.2, port=0, enable_model_warmup=True
    ).start()
    target = f"127.0.0.1:{server.port}"
    try:
        assert sorted(server.models) == ["other", "tfrec"]
        inputs = example_inputs(model, df.head(3))["score"]
        assert _versions(target, "tfrec") == [1, 2]  # specific { versions: 1 versions: 2 }
        assert _versions(target, "other") == [2]  # TF Serving's default: latest, 1 version
        stable, version = _predict(target, "tfrec", inputs, version_label="stable")
        assert version == 1
        assert _predict(target, "tfrec", inputs, version_label="canary")[1] == 2
        assert _predict(target, "tfrec", inputs, version=1)[1] == 1
        with pytest.raises(ServingError, match="Unrecognized servable version label"):
            _predict(target, "tfrec", inputs, version_label="nightly")
        np.testing.assert_allclose(_predict(target, "other", inputs)[0]["score"], stable["score"], atol=1e-6)
        # Promote the canary: serve version 2 only, both labels on it, and drop
        # the second model; the file is re-read while serving.
        config.write_text(
            config.read_text().replace("        versions: 1\n", "").replace("value: 1", "value: 2").replace(other, "")
        )
        deadline = time.time() + 30
        while time.time() < deadline and (sorted(server.models) != ["tfrec"] or _versions(target, "tfrec") != [2]):
            time.sleep(0.2)
        assert sorted(server.models) == ["tfrec"] and _versions(target, "tfrec") == [2]
        assert _predict(target, "tfrec", inputs, version_label="stable")[1] == 2
        with pytest.raises(ServingError, match="Servable not found"):
            _predict(target, "other", inputs)
        # A broken edit is logged; the running configuration keeps serving.
        config.write_text("model_config_list { config { nmae: 1 } }")
        time.sleep(0.6)
        assert _predict(target, "tfrec", inputs)[1] == 2
    finally:
        server.stop()


def model_scores(model, rows):
    from tfrec.models.inference import predict_dataframe

    return predict_dataframe(model, rows.drop(columns=["position"]))["score"]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_tfrec_serve_takes_tf_servings_command_line(two_versions, tmp_path):
    """The flags of serving/run-tf-serving.sh, with the container path mapped to the export folder."""
    base, df, model = two_versions
    grpc_port, rest_port = _free_port(), _free_port()
    command = [
        sys.executable,
        "-m",
        "tfrec.cli",
        "serve",
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        f"--model_config_file={REPO / 'serving/models.config'}",
        "--model_config_file_poll_wait_seconds=60",
        "--file_system_poll_wait_seconds=5",
        "--enable_batching=true",
        f"--batching_parameters_file={REPO / 'serving/batching_parameters.txt'}",
        "--enable_model_warmup=true",
        f"--monitoring_config_file={REPO / 'serving/monitoring.config'}",
        f"--base_path_map=/models={base}",
    ]
    log_path = tmp_path / "serve.log"  # a file, not a pipe: one log line per request must never block the server
    log_file = open(log_path, "w")  # noqa: SIM115 (closed in finally)
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 120
        url = f"http://127.0.0.1:{rest_port}"
        while time.time() < deadline:
            try:
                if urllib.request.urlopen(url + "/readyz", timeout=2).status == 200:
                    break
            except OSError:
                assert process.poll() is None, log_path.read_text()
                time.sleep(0.5)
        from tfrec.export.saved_model import example_inputs

        target = f"127.0.0.1:{grpc_port}"
        assert _versions(target, "tfrec") == [1, 2]
        inputs = example_inputs(model, df.head(2))["score"]
        got, version = _predict(target, "tfrec", inputs, version_label="canary")
        assert version == 2
        np.testing.assert_allclose(got["score"], model_scores(model, df.head(2)), atol=1e-5)
        # TF Serving's REST API on --rest_api_port: the label's version, columnar format.
        import requests

        body = {
            "signature_name": "score",
            "inputs": {k: v.astype(str).tolist() if v.dtype == object else v.tolist() for k, v in inputs.items()},
        }
        answer = requests.post(f"{url}/v1/models/tfrec/labels/canary:predict", json=body, timeout=60)
        assert answer.status_code == 200, answer.text
        np.testing.assert_allclose(answer.json()["outputs"]["score"], model_scores(model, df.head(2)), atol=1e-5)
        assert requests.get(f"{url}/v1/models/tfrec", timeout=10).json()["model_version_status"][0]["state"] == (
            "AVAILABLE"
        )
        metrics = urllib.request.urlopen(url + "/monitoring/prometheus/metrics", timeout=5).read().decode()
        assert 'method="REST:Predict"' in metrics and 'method="Predict"' in metrics
    finally:
        process.terminate()
        process.wait(timeout=30)
        log_file.close()
