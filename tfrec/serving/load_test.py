"""Load test: N concurrent gRPC clients for T seconds against one server.

Loopback only and bounded in clients and time. Reports QPS, p50/p95/p99
latency and errors.

Example:

```python
report = run_load_test("127.0.0.1:8500", "score", inputs, clients=16, seconds=10)
# against a server with TLS and a token: ServingClient's keyword arguments
report = run_load_test("127.0.0.1:8500", "score", inputs, client_options={
    "root_certificates": "ca.pem", "server_name": "localhost", "auth_token_file": "token.txt"})
```
"""

from __future__ import annotations

import threading
import time

import numpy as np

MAX_CLIENTS = 64
MAX_SECONDS = 300


def run_load_test(
    target, signature, inputs, clients=1, seconds=10.0, model_name="tfrec", timeout=5.0, client_options=None
):
    """Sends `inputs` to `signature` from `clients` threads for `seconds`.

    `client_options`: more `ServingClient` keyword arguments (TLS files, token).
    A client whose first (warm-up) call fails raises its `ServingError` here
    (e.g. UNAUTHENTICATED for a missing token), after the other clients end.
    """
    from tfrec.serving.client import ServingClient, ServingError

    host = target.rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost", "[::1]"):
        raise ValueError(f"load tests run on loopback only, got {target!r}")
    if not 1 <= clients <= MAX_CLIENTS:
        raise ValueError(f"clients must be in [1, {MAX_CLIENTS}], got {clients}")
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"seconds must be in (0, {MAX_SECONDS}], got {seconds}")
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    failed: list[ServingError] = []
    stop_at = time.monotonic() + seconds

    def worker(i):
        with ServingClient(
            target, model_name=model_name, timeout=timeout, retries=0, **(client_options or {})
        ) as client:
            try:
                client.predict(signature, inputs)  # connect and warm up outside the measurement
            except ServingError as e:
                failed.append(e)
                return
            while time.monotonic() < stop_at:
                t = time.perf_counter()
                try:
                    client.predict(signature, inputs)
                    latencies[i].append(time.perf_counter() - t)
                except ServingError:
                    errors[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    if failed:
        raise failed[0]
    all_lat = np.array([x for part in latencies for x in part])
    ok = len(all_lat)
    pct = (lambda q: float(np.percentile(all_lat, q) * 1000)) if ok else (lambda q: float("nan"))
    return {
        "signature": signature,
        "clients": clients,
        "seconds": round(elapsed, 2),
        "requests": ok,
        "errors": int(sum(errors)),
        "qps": round(ok / elapsed, 1),
        "p50_ms": round(pct(50), 2),
        "p95_ms": round(pct(95), 2),
        "p99_ms": round(pct(99), 2),
    }
