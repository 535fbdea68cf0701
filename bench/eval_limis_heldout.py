"""Score the LIMIS parser on one phrasing set: rules only and rules + semantic matcher.

Run: ``PYTHONPATH=AnatomyCommon:DAPAtlasModule:LIMIS HF_HUB_OFFLINE=1 .venv/bin/python
bench/eval_limis_heldout.py limis_phrasings_issue11_batch3.json [--show-errors]``

Prints accuracy, the confidently wrong count (a kind other than ``unknown`` that is not the
expected command) overall and on the ``negation`` subset, per subset, and (``--show-errors``)
each miss. A phrasing's ``context`` is the pending dialogue state and ``choices`` the candidates
of the previous ask-back.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in ("AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule"):
    sys.path.insert(0, str(ROOT / folder))

DATA = ROOT / "LIMIS" / "Testing" / "Python" / "data"


def is_correct(phrasing: dict, command) -> bool:
    return command.kind == phrasing["kind"] and all(
        command.args.get(k) == v for k, v in phrasing["args"].items()
    )


def context_of(phrasing: dict):
    from LIMISLib.command_grammar import ParseContext

    return ParseContext(pending=phrasing.get("context"), choices=tuple(phrasing.get("choices") or ()))


def score(phrasings: list[dict], semantic: bool) -> dict:
    from LIMISLib.command_grammar import parse_command

    result = {"n": len(phrasings), "right": 0, "wrong": 0, "negation_wrong": 0, "misses": []}
    per_subset: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for p in phrasings:
        command = parse_command(p["text"], context_of(p), semantic=semantic)
        good = is_correct(p, command)
        subset = p.get("subset") or "-"
        per_subset[subset][0] += good
        per_subset[subset][1] += 1
        if good:
            result["right"] += 1
            continue
        wrong = command.kind != "unknown"  # unknown = an honest "not understood" or an ask-back
        result["wrong"] += wrong
        result["negation_wrong"] += wrong and subset == "negation"
        expected = (p["kind"], p["args"])
        result["misses"].append((p["text"], p.get("context"), expected, command.kind, command.args))
    result["per_subset"] = dict(per_subset)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="phrasing files in LIMIS/Testing/Python/data")
    parser.add_argument("--show-errors", action="store_true")
    parser.add_argument("--rules-only", action="store_true")
    args = parser.parse_args()
    phrasings = [p for name in args.files for p in json.loads((DATA / name).read_text())["phrasings"]]
    for semantic in (False,) if args.rules_only else (False, True):
        r = score(phrasings, semantic)
        label = "rules + matcher" if semantic else "rules only"
        n_neg = sum(p.get("subset") == "negation" for p in phrasings)
        print(
            f"{label:16s} {r['right']}/{r['n']} = {r['right'] / r['n']:.1%}   confidently wrong {r['wrong']}"
            f"   negation/scope wrong {r['negation_wrong']} of {n_neg}"
        )
        print("   " + "  ".join(f"{k} {v[0]}/{v[1]}" for k, v in sorted(r["per_subset"].items())))
        if args.show_errors:
            for miss in r["misses"]:
                print("     MISS", miss)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
