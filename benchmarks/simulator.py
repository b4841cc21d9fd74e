"""Simulator throughput: impressions per second on one core.

Usage: python benchmarks/simulator.py [--sessions 100000] [--repeat 3]
Prints JSON with the best wall time and impressions/s (target: 1M in < 60 s).
"""

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the target says
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from tfrec.data.simulator import SimulatorConfig, simulate  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cfg = SimulatorConfig(num_sessions=args.sessions)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        data = simulate(cfg)
        times.append(time.perf_counter() - t)
    n = len(data.impressions)
    print(
        json.dumps(
            {
                "impressions": n,
                "best_seconds": round(min(times), 3),
                "impressions_per_second": round(n / min(times)),
                "target_1m_under_60s": n / min(times) * 60 >= 1_000_000,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
