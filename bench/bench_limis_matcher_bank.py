"""What the larger exemplar bank costs: cold start and warm per-sentence latency of the semantic
matcher with the full bank vs the hand-written bank alone, measured in the same run.

Run: ``PYTHONPATH=AnatomyCommon:DAPAtlasModule:LIMIS HF_HUB_OFFLINE=1 .venv/bin/python
bench/bench_limis_matcher_bank.py [--repeats 20]``

Cold start = loading the model (once per process, shared) + embedding the bank (once per matcher);
warm = one sentence through :meth:`SemanticMatcher.match` (wall and CPU time of this thread, median).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in ("AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule"):
    sys.path.insert(0, str(ROOT / folder))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SENTENCES = [
    "could you make it hug the organ less",
    "I wonder whether the boundary is right",
    "the weather is nice today",
    "tidy this up a bit for me",
    "let us begin with the spleen",
    "Sorry to bother you, but that result is actually fine, so I would like to accept it",
]


def main() -> int:
    from LIMISLib.semantic_matcher import SemanticMatcher, load_exemplars, load_sentence_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    started = time.perf_counter()
    model = load_sentence_model()
    load_s = time.perf_counter() - started
    banks = {"hand-written": load_exemplars(parts=("labels",)), "full bank": load_exemplars()}
    results = {}
    for name, exemplars in banks.items():
        matcher = SemanticMatcher(model, exemplars)
        started = time.perf_counter()
        matcher.warm_up()
        embed_s = time.perf_counter() - started
        wall, cpu = [], []
        for _ in range(args.repeats):
            for text in SENTENCES:
                w, c = time.perf_counter(), time.thread_time()
                matcher.match(text)
                wall.append((time.perf_counter() - w) * 1000)
                cpu.append((time.thread_time() - c) * 1000)
        rows = sum(len(v) for v in exemplars.values())
        results[name] = (rows, embed_s, statistics.median(wall), statistics.median(cpu))
    print(
        f"model load {load_s:.1f} s (once per process); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"{'bank':14s} {'rows':>5s} {'embed bank':>11s} {'warm wall':>10s} {'warm CPU':>9s}")
    for name, (rows, embed_s, wall_ms, cpu_ms) in results.items():
        print(f"{name:14s} {rows:5d} {embed_s:9.1f} s {wall_ms:7.1f} ms {cpu_ms:6.1f} ms")
    hand, full = results["hand-written"], results["full bank"]
    print(
        f"full / hand-written: cold embedding x{full[1] / hand[1]:.1f}, warm wall x{full[2] / hand[2]:.2f}, "
        f"warm CPU x{full[3] / hand[3]:.2f} (target: warm < 50 ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
