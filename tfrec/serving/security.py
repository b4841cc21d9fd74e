"""Transport security and auth for the local server and its clients.

The local server (`LocalModelServer`, `tfrec serve`) listens on 127.0.0.1
unless told otherwise and trusts whoever can reach it. Two optional guards:

* TLS, from TF Serving's `--ssl_config_file`: a text-format `SSLConfig`
  (`config/ssl_config.proto`) holding the PEM *contents* (not paths) of
  `server_key`, `server_cert` and `custom_ca`, and `client_verify` (require a
  client certificate signed by `custom_ca`: mutual TLS). TF Serving applies it
  to gRPC only; the local server applies it to gRPC (`grpc.ssl_server_credentials`)
  and to the REST port (an `ssl.SSLContext` on the HTTP server's connections).
* A bearer token (tfrec only, `--auth_token_file`): gRPC calls must carry the
  metadata `authorization: Bearer <token>`, REST requests the header
  `Authorization: Bearer <token>`; a missing or wrong token gets
  UNAUTHENTICATED / HTTP 401 and the server keeps serving. `/healthz` and
  `/readyz` stay open (probes carry no secrets and learn only up/ready); the
  REST API and the Prometheus metrics need the token. Tokens are compared with
  `hmac.compare_digest` and never logged.

Clients: `client_channel_credentials` (root CA, optional client certificate
and key) and `resolve_token` (an explicit token or file, else the
`TFREC_SERVING_TOKEN` / `TFREC_SERVING_TOKEN_FILE` environment variables) for
gRPC, `client_ssl_context` and `BearerToken.header()` for REST.

The SSLConfig file (adjacent string literals concatenate, as in any text proto):

```
server_key: "-----BEGIN PRIVATE KEY-----\\n"
  "MIG...\\n"
  "-----END PRIVATE KEY-----\\n"
server_cert: "-----BEGIN CERTIFICATE-----\\n..."
custom_ca: "-----BEGIN CERTIFICATE-----\\n..."
client_verify: true
```

Example:

```python
config = read_ssl_config("ssl.config")              # SSLConfig; ServingConfigError names the bad field
token = BearerToken(read_token_file("token.txt"))
server = LocalModelServer("models", port=8500, ssl_config=config, auth_token=token).start()
client = ServingClient("localhost:8500", root_certificates="ca.pem", auth_token_file="token.txt")
```
"""

from __future__ import annotations

import dataclasses
import hmac
import ipaddress
import json
import logging
import os
import ssl
import stat
import tempfile
from collections.abc import Callable

import grpc

from tfrec.serving.config import ServingConfigError

log = logging.getLogger("tfrec.serving")

AUTH_TOKEN_ENV = "TFREC_SERVING_TOKEN"
AUTH_TOKEN_FILE_ENV = "TFREC_SERVING_TOKEN_FILE"
OPEN_PATHS = frozenset({"/healthz", "/readyz"})  # REST paths that need no token
_SCHEME = "bearer"


# --------------------------------------------------------------------- TLS
@dataclasses.dataclass(frozen=True)
class SSLConfig:
    """TF Serving's `SSLConfig`: PEM key, certificate (chain), client CA, mutual TLS.

    Build it with `read_ssl_config` / `parse_ssl_config` (which check it) or
    directly; `server_key` is left out of the repr.

    Example: `SSLConfig(server_key=key_pem, server_cert=cert_pem).server_credentials()`.
    """

    server_key: str = dataclasses.field(repr=False)
    server_cert: str
    custom_ca: str = ""
    client_verify: bool = False

    def server_credentials(self) -> grpc.ServerCredentials:
        """gRPC server credentials, as TF Serving builds them (a client CA only with `client_verify`)."""
        return grpc.ssl_server_credentials(
            [(self.server_key.encode(), self.server_cert.encode())],
            root_certificates=self.custom_ca.encode() if self.client_verify else None,
            require_client_auth=self.client_verify,
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A server-side `ssl.SSLContext` (TLS 1.2+) for the REST port; client certificates with `client_verify`."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        _load_cert_chain(context, self.server_cert, self.server_key)
        if self.client_verify:
            context.load_verify_locations(cadata=self.custom_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        context.set_alpn_protocols(["http/1.1"])
        return context


def _load_cert_chain(context: ssl.SSLContext, cert_pem: str, key_pem: str) -> None:
    """`context.load_cert_chain` of PEM text: `ssl` reads files only, so through a private temporary folder."""
    with tempfile.TemporaryDirectory(prefix="tfrec-tls-") as folder:  # mode 0700
        cert_path, key_path = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        with open(cert_path, "w", encoding="ascii") as f:
            f.write(cert_pem)
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="ascii") as f:
            f.write(key_pem)
        context.load_cert_chain(cert_path, key_path)


def _ssl_config_class():
    """The `SSLConfig` message class: tensorflow-serving-api's where it ships one, else from a copied descriptor."""
    try:
        from tensorflow_serving.config import ssl_config_pb2

        return ssl_config_pb2.SSLConfig
    except ImportError:
        pass
    from google.protobuf.descriptor_pb2 import FieldDescriptorProto as _F

    from tfrec.serving.config import _message_class

    optional = _F.LABEL_OPTIONAL
    return _message_class(
        "tfrec/tf_serving_ssl_config.proto",
        {
            # Copied from TF Serving's config/ssl_config.proto.
            "SSLConfig": [
                ("server_key", 1, _F.TYPE_STRING, None, optional),
                ("server_cert", 2, _F.TYPE_STRING, None, optional),
                ("custom_ca", 3, _F.TYPE_STRING, None, optional),
                ("client_verify", 4, _F.TYPE_BOOL, None, optional),
            ]
        },
    )["SSLConfig"]


def parse_ssl_config(text: str, path: str = "<ssl config>") -> SSLConfig:
    """A checked `SSLConfig` from text-format `SSLConfig` (TF Serving's `--ssl_config_file`).

    Refused with a `ServingConfigError` naming the file and field: unknown
    fields, a missing `server_key` or `server_cert`, text that is not PEM, a
    key that does not match the certificate, `client_verify` without
    `custom_ca`.

    Example: `parse_ssl_config('server_key: "..." server_cert: "..."')`.
    """
    from google.protobuf import text_format

    where = f"ssl config file {path!r}"
    message = _ssl_config_class()()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as e:
        raise ServingConfigError(f"{where}: {e}") from None
    config = SSLConfig(message.server_key, message.server_cert, message.custom_ca, bool(message.client_verify))
    for name, marker in (("server_key", "PRIVATE KEY-----"), ("server_cert", "-----BEGIN CERTIFICATE-----")):
        value = getattr(config, name)
        if not value.strip():
            raise ServingConfigError(f"{where}: {name} is missing (the PEM text itself, not a path)")
        if marker not in value:
            raise ServingConfigError(f"{where}: {name} is not PEM text (no '{marker}'); give the contents, not a path")
    if config.client_verify and not config.custom_ca.strip():
        raise ServingConfigError(f"{where}: client_verify needs custom_ca (the CA that signs client certificates)")
    if config.custom_ca.strip():
        try:
            ssl.create_default_context(cadata=config.custom_ca)
        except (ssl.SSLError, ValueError) as e:
            raise ServingConfigError(f"{where}: custom_ca is not a PEM certificate ({e})") from None
    try:
        config.ssl_context()
    except ssl.SSLError as e:
        raise ServingConfigError(
            f"{where}: server_key and server_cert do not load as a key pair (a key of another certificate?): {e}"
        ) from None
    return config


def read_ssl_config(path: str) -> SSLConfig:
    """`parse_ssl_config` of the file at `path`. Example: `read_ssl_config("/secrets/ssl.config")`."""
    return parse_ssl_config(_read_secret(path, "ssl config file"), path)


def _read_secret(path: str, what: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        mode = os.stat(path).st_mode
    except (OSError, UnicodeDecodeError) as e:
        detail = e.strerror if isinstance(e, OSError) and e.strerror else e
        raise ServingConfigError(f"{what} {path!r} cannot be read: {detail}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            json.dumps({"event": "secret_file_readable_by_others", "file": path, "mode": oct(stat.S_IMODE(mode))})
        )
    return text


# ------------------------------------------------------------------- tokens
class BearerToken:
    """A bearer token: checks `Authorization` values in constant time; never shows the secret.

    Example:

    ```python
    token = BearerToken("s3cr3t-token-value")
    token.matches("Bearer s3cr3t-token-value")     # True
    token.header()                                 # "Bearer s3cr3t-token-value"
    ```
    """

    def __init__(self, token: str):
        token = check_token(token, "auth token")
        self._secret = token.encode("ascii")

    def __repr__(self) -> str:
        return "BearerToken(<hidden>)"

    def header(self) -> str:
        """The `Authorization` value to send."""
        return f"Bearer {self._secret.decode('ascii')}"

    def matches(self, authorization: str | bytes | None) -> bool:
        """Whether an `Authorization` value is `Bearer <this token>` (the scheme in any case)."""
        if authorization is None:
            return False
        if isinstance(authorization, str):
            try:
                authorization = authorization.encode("ascii")
            except UnicodeEncodeError:
                return False
        scheme, _, credentials = authorization.strip().partition(b" ")
        ok_scheme = scheme.lower() == _SCHEME.encode()
        return hmac.compare_digest(credentials.strip(), self._secret) and ok_scheme


def check_token(token: str, what: str = "auth token") -> str:
    """`token` stripped, refused (ValueError naming `what`) when empty or not one word of printable ASCII.

    Example: `check_token("abc123")  # "abc123"`.
    """
    token = token.strip()
    if not token:
        raise ServingConfigError(f"{what} is empty")
    if any(not (33 <= ord(c) <= 126) for c in token):
        raise ServingConfigError(f"{what} must be printable ASCII without spaces (it travels in a header)")
    return token


def read_token_file(path: str) -> str:
    """The token in the file at `path` (surrounding whitespace removed), checked by `check_token`.

    Example: `BearerToken(read_token_file("/run/secrets/tfrec_token"))`.
    """
    return check_token(_read_secret(path, "auth token file"), f"auth token file {path!r}")


def resolve_token(auth_token: str | None = None, auth_token_file: str | None = None) -> BearerToken | None:
    """The client's token: `auth_token`, else `auth_token_file`, else the environment; None without any.

    The environment: `$TFREC_SERVING_TOKEN` (the token), else
    `$TFREC_SERVING_TOKEN_FILE` (a file holding it).

    Example: `resolve_token(auth_token_file="token.txt").header()`.
    """
    if auth_token is not None and auth_token_file is not None:
        raise ValueError("give auth_token or auth_token_file, not both")
    if auth_token is not None:
        return BearerToken(auth_token)
    if auth_token_file is not None:
        return BearerToken(read_token_file(auth_token_file))
    if os.environ.get(AUTH_TOKEN_ENV):
        return BearerToken(check_token(os.environ[AUTH_TOKEN_ENV], f"${AUTH_TOKEN_ENV}"))
    if os.environ.get(AUTH_TOKEN_FILE_ENV):
        return BearerToken(read_token_file(os.environ[AUTH_TOKEN_FILE_ENV]))
    return None


_MISSING = "missing 'authorization: Bearer <token>' (the server was started with --auth_token_file)"
_WRONG = "invalid bearer token"


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Refuses gRPC calls without `authorization: Bearer <token>` metadata with UNAUTHENTICATED.

    `on_refused(method)` (e.g. a metrics counter) is called with the method's
    short name for each refusal. Unknown methods stay UNIMPLEMENTED.

    Example: `grpc.server(executor, interceptors=[TokenAuthInterceptor(BearerToken(secret))])`.
    """

    def __init__(self, token: BearerToken, on_refused: Callable[[str], None] | None = None):
        self.token = token
        self.on_refused = on_refused

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        values = [v for k, v in handler_call_details.invocation_metadata or () if k == "authorization"]
        if len(values) == 1 and self.token.matches(values[0]):
            return handler
        method = handler_call_details.method.rsplit("/", 1)[-1]
        message = _MISSING if not values else _WRONG
        log.info(json.dumps({"method": method, "code": "UNAUTHENTICATED", "error": message}))
        if self.on_refused is not None:
            self.on_refused(method)
        return _refusal(handler, message)


def _refusal(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same kind as `handler` that answers UNAUTHENTICATED (the request is not parsed)."""

    def deny(request_or_iterator, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    serializer = handler.response_serializer
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(deny, response_serializer=serializer)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(deny, response_serializer=serializer)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(deny, response_serializer=serializer)
    return grpc.unary_unary_rpc_method_handler(deny, response_serializer=serializer)


class RestTokenCheck:
    """The REST server's token check: `check(path, authorization)` is None to serve, else the 401 message.

    Paths in `open_paths` (`/healthz`, `/readyz`) need no token.

    Example: `RestTokenCheck(BearerToken(secret))("/v1/models/tfrec", "Bearer " + secret)  # None`.
    """

    def __init__(
        self,
        token: BearerToken,
        open_paths: frozenset[str] = OPEN_PATHS,
        on_refused: Callable[[str], None] | None = None,
    ):
        self.token = token
        self.open_paths = open_paths
        self.on_refused = on_refused

    def __call__(self, path: str, authorization: str | None) -> str | None:
        if path in self.open_paths or self.token.matches(authorization):
            return None
        message = _MISSING.replace("'authorization", "'Authorization") if authorization is None else _WRONG
        log.info(json.dumps({"method": "REST", "code": "UNAUTHENTICATED", "error": message}))
        if self.on_refused is not None:
            self.on_refused("REST")
        return message


# ------------------------------------------------------------------ clients
def _pem(value: bytes | str | None, what: str) -> bytes | None:
    """PEM bytes given as bytes, PEM text, or a path to a PEM file."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if "-----BEGIN" in value:
        return value.encode("ascii")
    try:
        with open(value, "rb") as f:
            return f.read()
    except OSError as e:
        raise ValueError(f"{what} {value!r} cannot be read: {e.strerror or e}") from None


def client_channel_credentials(
    root_certificates: bytes | str | None = None,
    certificate_chain: bytes | str | None = None,
    private_key: bytes | str | None = None,
) -> grpc.ChannelCredentials:
    """gRPC TLS channel credentials; each argument PEM bytes, PEM text or a file path.

    `root_certificates`: the CA that signed the server's certificate (None:
    the system's roots). `certificate_chain` and `private_key`: the client's
    certificate and key for mutual TLS (both or neither).

    Example: `grpc.secure_channel("localhost:8500", client_channel_credentials("ca.pem", "client.pem", "client.key"))`.
    """
    if (certificate_chain is None) != (private_key is None):
        raise ValueError("give certificate_chain and private_key together (the client certificate and its key)")
    return grpc.ssl_channel_credentials(
        root_certificates=_pem(root_certificates, "root_certificates"),
        private_key=_pem(private_key, "private_key"),
        certificate_chain=_pem(certificate_chain, "certificate_chain"),
    )


def client_ssl_context(
    root_certificates: bytes | str | None = None,
    certificate_chain: bytes | str | None = None,
    private_key: bytes | str | None = None,
) -> ssl.SSLContext:
    """An `ssl.SSLContext` for HTTPS calls to the REST port (urllib's `context=`).

    Arguments as `client_channel_credentials`.

    Example: `urllib.request.urlopen("https://localhost:8501/v1/models/tfrec", context=client_ssl_context("ca.pem"))`.
    """
    if (certificate_chain is None) != (private_key is None):
        raise ValueError("give certificate_chain and private_key together (the client certificate and its key)")
    roots = _pem(root_certificates, "root_certificates")
    context = ssl.create_default_context(cadata=roots.decode("ascii") if roots else None)
    if certificate_chain is not None and private_key is not None:
        cert, key = _pem(certificate_chain, "certificate_chain"), _pem(private_key, "private_key")
        _load_cert_chain(context, (cert or b"").decode("ascii"), (key or b"").decode("ascii"))
    return context


def is_loopback(target: str) -> bool:
    """Whether a gRPC target is on this machine (`localhost`, 127.0.0.0/8, ::1, a unix socket).

    Example: `is_loopback("127.0.0.1:8500")  # True`.
    """
    if target.startswith(("unix:", "unix-abstract:")):
        return True
    host = target.removeprefix("dns:///").removeprefix("ipv4:").removeprefix("ipv6:")
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 or host.startswith("[") else host
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
