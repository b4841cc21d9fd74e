"""Transport security and auth of the local server: TLS, mutual TLS, bearer tokens, loopback-only deployment files.

Certificates are made here, per test session, with the `openssl` command line
(the `cryptography` package is not a dependency); no key file is committed.
"""

import argparse
import http.client
import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import urllib.error
import urllib.request

import grpc
import pytest
import yaml

from tfrec.serving.client import ServingClient, ServingError
from tfrec.serving.config import ServingConfigError
from tfrec.serving.security import (
    BearerToken,
    client_ssl_context,
    is_loopback,
    parse_ssl_config,
    read_ssl_config,
    read_token_file,
    resolve_token,
)

REPO = pathlib.Path(__file__).resolve().parents[1]
OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="needs the openssl command line to make test certificates")


# ---------------------------------------------------------------- certificates
def _openssl(folder, *args):
    subprocess.run([OPENSSL, *args], cwd=folder, check=True, capture_output=True, timeout=60)


def _key_and_csr(folder, name, subject):
    _openssl(
        folder, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject,
    )  # fmt: skip


def _ca(folder, name):
    _openssl(
        folder, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN=tfrec test {name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip


def _signed(folder, name, ca, serial, extensions):
    (folder / f"{name}.ext").write_text(extensions)
    _key_and_csr(folder, name, f"/CN={name}")
    _openssl(
        folder, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-set_serial", str(serial), "-days", "2", "-out", f"{name}.pem", "-extfile", f"{name}.ext",
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """{name: path}: a CA, a server certificate it signs (localhost, 127.0.0.1), a client one, and a rogue CA's pair."""
    if OPENSSL is None:
        pytest.skip("needs the openssl command line to make test certificates")
    folder = tmp_path_factory.mktemp("pki")
    _ca(folder, "ca")
    _ca(folder, "other_ca")
    leaf = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
    _signed(
        folder, "server", "ca", 2, leaf + "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
    )
    _signed(folder, "client", "ca", 3, leaf + "extendedKeyUsage=clientAuth\n")
    _signed(folder, "rogue_client", "other_ca", 4, leaf + "extendedKeyUsage=clientAuth\n")
    return {p.stem + p.suffix.replace(".", "_"): str(p) for p in folder.iterdir() if p.suffix in (".pem", ".key")}


def _text_proto_string(pem: str) -> str:
    """PEM as adjacent text-proto string literals, one per line, as SSLConfig files are usually written."""
    return "\n  ".join(json.dumps(line + "\n") for line in pem.strip().splitlines())


def _ssl_config_file(pki, folder, client_verify):
    def read(name):
        return pathlib.Path(pki[name]).read_text()

    text = (
        f"server_key: {_text_proto_string(read('server_key'))}\nserver_cert: {_text_proto_string(read('server_pem'))}\n"
    )
    if client_verify:
        text += f"custom_ca: {_text_proto_string(read('ca_pem'))}\nclient_verify: true\n"
    path = pathlib.Path(folder) / ("mtls.config" if client_verify else "tls.config")
    path.write_text(text)
    path.chmod(0o600)
    return str(path)


# --------------------------------------------------------------------- servers
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def exported(small_trained, small_export):
    """The session's exported small model (conftest), `score` inputs for two rows, and four rows."""
    from tfrec.export.saved_model import example_inputs

    _, df, model = small_trained
    return small_export, example_inputs(model, df.head(2))["score"], df.head(4)


def _from_flags(base, *flags):
    from tfrec.serving.flags import add_serve_arguments, server_from_args

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args(
        [
            f"--port={_free_port()}",
            f"--rest_api_port={_free_port()}",
            "--model_name=tfrec",
            f"--model_base_path={base / 'tfrec'}",
            "--file_system_poll_wait_seconds=0",
            "--enable_model_warmup=false",
            "--monitoring_config_file=" + str(REPO / "serving/monitoring.config"),
            *flags,
        ]
    )
    return server_from_args(args)


@pytest.fixture(scope="module")
def tls_server(exported, pki, tmp_path_factory):
    """TLS on both ports, built with the Python API."""
    from tfrec.serving.server import LocalModelServer

    config = read_ssl_config(_ssl_config_file(pki, tmp_path_factory.mktemp("tls"), client_verify=False))
    server = LocalModelServer(exported[0], port=0, http_port=0, poll_seconds=0, ssl_config=config).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def mtls_server(exported, pki, tmp_path_factory):
    """Mutual TLS, built from `tfrec serve`'s flags (--ssl_config_file with client_verify)."""
    path = _ssl_config_file(pki, tmp_path_factory.mktemp("mtls"), client_verify=True)
    server = _from_flags(exported[0], f"--ssl_config_file={path}").start()
    yield server
    server.stop()


TOKEN = "tfrec-test-token-0123456789abcdef"


@pytest.fixture(scope="module")
def token_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("token") / "token.txt"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return str(path)


@pytest.fixture(scope="module")
def token_server(exported, token_file):
    """Plaintext on loopback with a bearer token, built from `tfrec serve`'s flags (--auth_token_file)."""
    server = _from_flags(exported[0], f"--auth_token_file={token_file}").start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_token_from_the_environment(monkeypatch):
    monkeypatch.delenv("TFREC_SERVING_TOKEN", raising=False)
    monkeypatch.delenv("TFREC_SERVING_TOKEN_FILE", raising=False)


def _predict(target, inputs, **options):
    with ServingClient(target, timeout=20.0, retries=0, **options) as client:
        return client.predict("score", inputs)["score"]


def _refused(target, inputs, **options) -> grpc.StatusCode:
    with pytest.raises(ServingError) as err:
        _predict(target, inputs, **options)
    return err.value.code


def _get(url, headers=None, context=None):
    """(status, body, headers) of a GET; HTTP errors are answers, not exceptions."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=20, context=context) as answer:
            return answer.status, answer.read(), answer.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


# ----------------------------------------------------------------- config files
@needs_openssl
def test_ssl_config_file_reads_tf_servings_format_and_names_the_bad_field(pki, tmp_path):
    path = _ssl_config_file(pki, tmp_path, client_verify=True)
    config = read_ssl_config(path)
    assert config.server_cert == pathlib.Path(pki["server_pem"]).read_text()
    assert config.server_key == pathlib.Path(pki["server_key"]).read_text()
    assert config.client_verify and "BEGIN CERTIFICATE" in config.custom_ca
    assert "PRIVATE" not in repr(config)  # the key stays out of logs and tracebacks
    cert, key = (json.dumps(pathlib.Path(pki[n]).read_text()) for n in ("server_pem", "server_key"))
    other_key = json.dumps(pathlib.Path(pki["client_key"]).read_text())
    cases = {
        f"server_keys: {key} server_cert: {cert}": "server_keys",  # an unknown field, named by text_format
        f"server_key: {key}": "server_cert is missing",
        f'server_key: {key} server_cert: "{pki["server_pem"]}"': "server_cert is not PEM",  # a path, not contents
        f"server_key: {key} server_cert: {cert} client_verify: true": "client_verify needs custom_ca",
        f'server_key: {key} server_cert: {cert} custom_ca: "-----BEGIN CERTIFICATE-----\\nAAAA\\n"': "custom_ca",
        f"server_key: {other_key} server_cert: {cert}": "do not load as a key pair",
        f"server_key: {key} server_cert: {cert} client_verify: maybe": "client_verify",
    }
    for text, message in cases.items():
        with pytest.raises(ServingConfigError, match=message) as err:
            parse_ssl_config(text, "bad.config")
        assert "bad.config" in str(err.value)
    with pytest.raises(ServingConfigError, match="cannot be read"):
        read_ssl_config(str(tmp_path / "missing.config"))


def test_token_files_and_bearer_checks(tmp_path, monkeypatch):
    path = tmp_path / "token"
    path.write_text("  abc-123_XYZ \n")
    assert read_token_file(str(path)) == "abc-123_XYZ"
    for text, message in (("\n", "is empty"), ("two words", "printable ASCII without spaces")):
        path.write_text(text)
        with pytest.raises(ServingConfigError, match=message) as err:
            read_token_file(str(path))
        assert str(path) in str(err.value)
    with pytest.raises(ServingConfigError, match="cannot be read"):
        read_token_file(str(tmp_path / "nope"))
    token = BearerToken("abc-123")
    assert token.matches("Bearer abc-123") and token.matches("bearer abc-123") and token.matches(b"Bearer abc-123")
    for value in (None, "", "abc-123", "Bearer abc-1234", "Bearer abc-12", "Basic abc-123", "Bearer  ", "Bearer é"):
        assert not token.matches(value), value
    assert "abc" not in repr(token)
    assert resolve_token() is None
    monkeypatch.setenv("TFREC_SERVING_TOKEN_FILE", str(tmp_path / "env-token"))
    (tmp_path / "env-token").write_text("from-file")
    assert resolve_token().matches("Bearer from-file")
    monkeypatch.setenv("TFREC_SERVING_TOKEN", "from-env")
    assert resolve_token().matches("Bearer from-env")  # the variable wins over the file variable
    assert resolve_token(auth_token="given").matches("Bearer given")  # an argument wins over both
    with pytest.raises(ValueError, match="not both"):
        resolve_token(auth_token="a", auth_token_file="b")
    assert is_loopback("127.0.0.1:8500") and is_loopback("localhost:1") and is_loopback("[::1]:8500")
    assert not is_loopback("10.0.0.5:8500") and not is_loopback("example.com:443")


# ------------------------------------------------------------------------- TLS
def test_tls_grpc_and_rest_work_with_the_servers_ca_and_fail_without(tls_server, pki, exported):
    _, inputs, _ = exported
    target = f"127.0.0.1:{tls_server.port}"
    expected = _predict(target, inputs, root_certificates=pki["ca_pem"])
    assert expected.shape == (2,)
    assert (_predict(f"localhost:{tls_server.port}", inputs, root_certificates=pki["ca_pem"]) == expected).all()
    # Without the server's CA: the system roots, another CA, or no TLS at all.
    assert _refused(target, inputs, tls=True) == grpc.StatusCode.UNAVAILABLE
    assert _refused(target, inputs, root_certificates=pki["other_ca_pem"]) == grpc.StatusCode.UNAVAILABLE
    assert _refused(target, inputs) == grpc.StatusCode.UNAVAILABLE
    # The certificate names localhost and 127.0.0.1, not another host.
    assert _refused(target, inputs, root_certificates=pki["ca_pem"], server_name="other.example") == (
        grpc.StatusCode.UNAVAILABLE
    )
    url = f"https://127.0.0.1:{tls_server.http_port}"
    status, body, _ = _get(url + "/v1/models/tfrec", context=client_ssl_context(pki["ca_pem"]))
    assert status == 200 and json.loads(body)["model_version_status"][0]["state"] == "AVAILABLE"
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _get(url + "/healthz", context=client_ssl_context(pki["other_ca_pem"]))
    with pytest.raises((OSError, http.client.HTTPException)):  # plaintext HTTP on the TLS port: the handshake fails
        _get(f"http://127.0.0.1:{tls_server.http_port}/healthz")
    # The refusals cost nothing: the server keeps serving.
    assert (_predict(target, inputs, root_certificates=pki["ca_pem"]) == expected).all()
    assert _get(url + "/healthz", context=client_ssl_context(pki["ca_pem"]))[0] == 200


def test_mutual_tls_refuses_a_client_without_a_certificate(mtls_server, pki, exported):
    _, inputs, _ = exported
    target = f"127.0.0.1:{mtls_server.port}"
    client_cert = {"certificate_chain": pki["client_pem"], "private_key": pki["client_key"]}
    expected = _predict(target, inputs, root_certificates=pki["ca_pem"], **client_cert)
    assert expected.shape == (2,)
    assert _refused(target, inputs, root_certificates=pki["ca_pem"]) == grpc.StatusCode.UNAVAILABLE
    rogue = {"certificate_chain": pki["rogue_client_pem"], "private_key": pki["rogue_client_key"]}
    assert _refused(target, inputs, root_certificates=pki["ca_pem"], **rogue) == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(ValueError, match="together"):
        ServingClient(target, root_certificates=pki["ca_pem"], certificate_chain=pki["client_pem"])
    url = f"https://127.0.0.1:{mtls_server.http_port}/v1/models/tfrec"
    with pytest.raises((OSError, http.client.HTTPException)):
        _get(url, context=client_ssl_context(pki["ca_pem"]))
    context = client_ssl_context(pki["ca_pem"], pki["client_pem"], pki["client_key"])
    assert _get(url, context=context)[0] == 200
    assert (_predict(target, inputs, root_certificates=pki["ca_pem"], **client_cert) == expected).all()


# ---------------------------------------------------------------------- tokens
def test_token_refusals_are_unauthenticated_and_the_server_keeps_serving(
    token_server, token_file, exported, monkeypatch
):
    _, inputs, _ = exported
    target = f"127.0.0.1:{token_server.port}"
    assert _refused(target, inputs) == grpc.StatusCode.UNAUTHENTICATED
    assert _refused(target, inputs, auth_token="wrong-token") == grpc.StatusCode.UNAUTHENTICATED
    with grpc.insecure_channel(target) as channel:  # another scheme, and the token twice, are refused too
        from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "tfrec"
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        for metadata in ((("authorization", f"Basic {TOKEN}"),), (("authorization", f"Bearer {TOKEN}"),) * 2):
            with pytest.raises(grpc.RpcError) as err:
                stub.GetModelStatus(request, timeout=10, metadata=metadata)
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert stub.GetModelStatus(request, timeout=10, metadata=(("authorization", f"Bearer {TOKEN}"),))
    expected = _predict(target, inputs, auth_token_file=token_file)
    assert expected.shape == (2,)
    with ServingClient(target, auth_token=TOKEN, timeout=20.0) as client:
        assert client.status()[0]["state"] == "AVAILABLE" and "score" in client.signatures()
    monkeypatch.setenv("TFREC_SERVING_TOKEN_FILE", token_file)  # the client's environment variable
    assert (_predict(target, inputs) == expected).all()
    monkeypatch.delenv("TFREC_SERVING_TOKEN_FILE")

    url = f"http://127.0.0.1:{token_server.http_port}"
    status, body, headers = _get(url + "/v1/models/tfrec")
    assert status == 401 and "Bearer" in headers["WWW-Authenticate"] and "Authorization" in json.loads(body)["error"]
    assert _get(url + "/v1/models/tfrec", {"Authorization": "Bearer wrong-token"})[0] == 401
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert _get(url + "/v1/models/tfrec", good)[0] == 200
    predict = urllib.request.Request(
        url + "/v1/models/tfrec:predict",
        data=json.dumps({"signature_name": "score", "inputs": {k: v.tolist() for k, v in inputs.items()}}).encode(),
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(predict, timeout=20)
    assert err.value.code == 401
    for name, value in good.items():
        predict.add_header(name, value)
    with urllib.request.urlopen(predict, timeout=20) as answer:
        assert json.loads(answer.read())["outputs"]["score"] == pytest.approx(expected.tolist(), abs=1e-5)
    # Probes stay open; metrics need the token, and count the refusals.
    assert _get(url + "/healthz")[0] == 200 and _get(url + "/readyz")[0] == 200
    metrics_path = url + "/monitoring/prometheus/metrics"
    assert _get(metrics_path)[0] == 401
    status, body, _ = _get(metrics_path, good)
    assert status == 200
    refused = re.findall(r'tfrec_errors_total\{method="([^"]+)",code="UNAUTHENTICATED"\} (\d+)', body.decode())
    assert {"Predict", "GetModelStatus", "REST"} <= {m for m, _ in refused}
    # After every refusal above, the server still answers.
    assert (_predict(target, inputs, auth_token=TOKEN) == expected).all()


def test_loadtest_passes_the_token_and_tls_options(token_server, token_file, mtls_server, pki, exported, tmp_path):
    from tfrec.cli import main
    from tfrec.serving.load_test import run_load_test

    _, inputs, rows = exported
    target = f"127.0.0.1:{token_server.port}"
    report = run_load_test(target, "score", inputs, seconds=0.5, client_options={"auth_token_file": token_file})
    assert report["requests"] > 0 and report["errors"] == 0
    with pytest.raises(ServingError, match="UNAUTHENTICATED"):
        run_load_test(target, "score", inputs, seconds=0.3, client_options={"auth_token": "wrong-token"})
    rows.to_parquet(tmp_path / "rows.parquet")
    command = ["loadtest", "--target", f"127.0.0.1:{mtls_server.port}", "--examples", str(tmp_path / "rows.parquet")]
    command += ["--seconds", "0.5", "--root_certificates", pki["ca_pem"], "--server_name", "localhost"]
    with pytest.raises(ServingError, match="UNAVAILABLE"):  # mutual TLS: no client certificate, no answer
        main(command)
    assert main([*command, "--client_cert", pki["client_pem"], "--client_key", pki["client_key"]]) == 0


# ----------------------------------------------------------- deployment files
def test_deployment_files_publish_on_loopback_unless_told(tmp_path):
    if shutil.which("bash") is None:
        pytest.skip("needs bash to run serving/run-tf-serving.sh")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "docker").write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    (fake / "docker").chmod(0o755)
    (tmp_path / "models").mkdir()

    clean = {k: v for k, v in os.environ.items() if not k.startswith("TFREC_SERVING_")}

    def docker_args(**env):
        run = subprocess.run(
            ["bash", str(REPO / "serving/run-tf-serving.sh"), str(tmp_path / "models")],
            env={**clean, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}", **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        args = run.stdout.splitlines()
        return [args[i + 1] for i, a in enumerate(args) if a == "-p"], args

    published, args = docker_args()
    assert published == ["127.0.0.1:8500:8500", "127.0.0.1:8501:8501"]
    assert not any(a.startswith("--ssl_config_file") for a in args)
    published, _ = docker_args(TFREC_SERVING_BIND="0.0.0.0")
    assert published == ["0.0.0.0:8500:8500", "0.0.0.0:8501:8501"]
    ssl_config = tmp_path / "ssl.config"
    ssl_config.write_text("")
    _, args = docker_args(TFREC_SERVING_SSL_CONFIG=str(ssl_config))
    assert "--ssl_config_file=/secrets/ssl.config" in args and f"{ssl_config}:/secrets/ssl.config:ro" in args

    compose = yaml.safe_load((REPO / "serving/docker-compose.yml").read_text())

    def interpolate(text, variables):  # compose's ${NAME:-default}
        return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: variables.get(m.group(1)) or m.group(2), text)

    ports = compose["services"]["tfserving"]["ports"]
    assert [interpolate(p, {}) for p in ports] == ["127.0.0.1:8500:8500", "127.0.0.1:8501:8501"]
    assert [interpolate(p, {"TFREC_SERVING_BIND": "0.0.0.0"}) for p in ports] == [
        "0.0.0.0:8500:8500",
        "0.0.0.0:8501:8501",
    ]
    for readme in ("README.md", "serving/README.md"):
        text = (REPO / readme).read_text()
        for phrase in ("must be trusted", "TFREC_SERVING_BIND", "--ssl_config_file", "--auth_token_file"):
            assert phrase in text, (readme, phrase)
        assert not re.search(r"-p (8500|8501):", text), f"{readme} publishes a port on every interface"
