#!/usr/bin/env python
"""Starts N workers of one multi-worker training job on this machine.

Each worker gets a `TF_CONFIG` naming all N workers on free localhost ports
(worker 0 is the chief) and runs the same command; `{task_index}` in the
command is replaced by the worker's index (e.g. a node-local output folder).
Worker output is prefixed with `[w<i>]`. If a worker fails, the others are
stopped and the launcher exits with its code. On CPU each worker is one
replica; for a real cluster see `training/k8s/` and `training/slurm/`.

    python training/launch_local.py --workers 2 -- tfrec train --config training/configs/multi_worker.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time


def free_ports(n):
    sockets, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
        ports.append(s.getsockname()[1])
    for s in sockets:
        s.close()
    return ports


def tf_config(ports, index):
    return json.dumps(
        {"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}
    )


def _pump(stream, prefix):
    for line in iter(stream.readline, ""):
        sys.stdout.write(f"{prefix} {line}")
        sys.stdout.flush()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=None, help="seconds before every worker is stopped")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command each worker runs")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command after --, e.g. -- tfrec train --config ...")
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    ports = free_ports(args.workers)
    procs, pumps = [], []
    for i in range(args.workers):
        env = dict(os.environ, TF_CONFIG=tf_config(ports, i))
        cmd = [part.replace("{task_index}", str(i)) for part in command]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        thread = threading.Thread(target=_pump, args=(proc.stdout, f"[w{i}]"), daemon=True)
        thread.start()
        procs.append(proc)
        pumps.append(thread)
    deadline = time.time() + args.timeout if args.timeout else None
    code = 0
    while any(p.poll() is None for p in procs):
        failed = [p for p in procs if p.poll() not in (None, 0)]
        timed_out = deadline is not None and time.time() > deadline
        if failed or timed_out:
            code = failed[0].returncode if failed else 124
            print(f"[launch] {'a worker failed' if failed else 'timeout'}: stopping all workers", flush=True)
            for p in procs:
                if p.poll() is None:
                    p.terminate()
            break
        time.sleep(0.2)
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    for t in pumps:
        t.join(timeout=5)
    if code == 0:
        code = next((p.returncode for p in procs if p.returncode != 0), 0)
    print(f"[launch] {args.workers} worker(s) finished with exit code {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
