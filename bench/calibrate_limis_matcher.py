"""Leave-one-set-out calibration of the LIMIS semantic matcher; rules only vs rules + matcher.

Run: ``PYTHONPATH=AnatomyCommon:DAPAtlasModule:LIMIS HF_HUB_OFFLINE=1 .venv/bin/python
bench/calibrate_limis_matcher.py [--write] [--show]``

The labelled phrasing sets of ``LIMIS/Testing/Python/data`` (sealed ``*batch8*`` files are skipped
by name, never opened) are both the exemplar source and the measure, so every number is
leave-one-set-out: for each set F,

1. the bank is the hand-written exemplars plus the phrasings of every set except F;
2. ``min_similarity``, ``min_margin`` and ``top_k`` are chosen on the other sets, each of their
   phrasings scored against a bank that also leaves out its own set (nested, so a phrasing never
   meets itself);
3. F is scored once with those thresholds: rules only vs rules + matcher, right and wrong
   ("wrong" = a kind other than ``unknown`` that is not the expected command).

An exemplar with the same normalised text as the sentence scored is left out as well (sets repeat
short replies such as "lgtm"; a repeat would measure memory, not generalisation).

Objective on the calibration sets: (right answers added) - PENALTY x (wrong answers added); ties go
to the stricter thresholds; when no setting gains, the matcher is switched off (min_similarity 2).
``--write`` rebuilds ``command_exemplars.json`` from all readable sets and stores the thresholds the
same procedure chooses on all of them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for folder in ("AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule"):
    sys.path.insert(0, str(ROOT / folder))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = ROOT / "LIMIS" / "Testing" / "Python" / "data"
PENALTY = 5.0
SIMILARITIES = np.round(np.arange(0.40, 0.951, 0.025), 3)
MARGINS = np.round(np.arange(0.0, 0.201, 0.01), 3)
TOP_KS = (1, 2, 3)
OFF = {"min_similarity": 2.0, "min_margin": 0.0, "top_k": 1}


def is_correct(phrasing: dict, command) -> bool:
    return command.kind == phrasing["kind"] and all(
        command.args.get(k) == v for k, v in phrasing["args"].items()
    )


def outcome(phrasing: dict, command) -> int:
    """1 right, -1 confidently wrong, 0 not understood / asked back."""
    if is_correct(phrasing, command):
        return 1
    return -1 if command.kind != "unknown" else 0


def main() -> int:
    from LIMISLib.command_grammar import (
        Command,
        ParseContext,
        _parse_normalised,
        normalise,
        parse_command,
        parse_with_rules,
    )
    from LIMISLib.commands.guard import guard_negation
    from LIMISLib.semantic_matcher import (
        EXEMPLARS_FILE,
        command_for_label,
        exemplar_label,
        load_sentence_model,
        phrasing_files,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rebuild command_exemplars.json")
    parser.add_argument("--show", action="store_true", help="print every matcher decision on held-out sets")
    args = parser.parse_args()

    files = phrasing_files(DATA)
    sets = {path.name: json.loads(path.read_text(encoding="utf-8"))["phrasings"] for path in files}
    names = list(sets)
    stored = json.loads(EXEMPLARS_FILE.read_text(encoding="utf-8"))
    hand = stored["labels"]

    # the bank: hand-written rows (set None) then phrasing rows (set name)
    rows: list[tuple[str, str, str | None]] = []  # (label, normalised text, set)
    for label, texts in hand.items():
        rows.extend((label, normalise(t) or t, None) for t in texts)
    for name, phrasings in sets.items():
        for p in phrasings:
            label = exemplar_label(p["kind"], p.get("args") or {}, p.get("subset"))
            if label is not None:
                rows.append((label, normalise(p["text"]) or p["text"], name))
    labels = sorted({r[0] for r in rows})
    row_label = np.array([labels.index(r[0]) for r in rows])
    row_set = np.array([names.index(r[2]) if r[2] else -1 for r in rows])
    row_text = [r[1] for r in rows]

    # the sentences the rules leave to the matcher
    queries = []  # (set index, phrasing, context, baseline outcome)
    totals = {name: {"n": 0, "rules": [0, 0]} for name in names}
    for si, (name, phrasings) in enumerate(sets.items()):
        for p in phrasings:
            context = ParseContext(pending=p.get("context"), choices=tuple(p.get("choices") or ()))
            result = outcome(p, parse_command(p["text"], context, semantic=False))
            totals[name]["n"] += 1
            totals[name]["rules"][0] += result == 1
            totals[name]["rules"][1] += result == -1
            if parse_with_rules(p["text"], context) is None:
                queries.append((si, p, context, result))
    print(
        f"{len(rows)} exemplar rows ({sum(row_set == -1)} hand-written), {len(labels)} labels, "
        f"{sum(t['n'] for t in totals.values())} phrasings in {len(names)} sets, "
        f"{len(queries)} reach the matcher"
    )

    model = load_sentence_model()
    started = time.perf_counter()
    unique = sorted(set(row_text) | {normalise(q[1]["text"]) or q[1]["text"] for q in queries})
    vectors = model.encode(unique, normalize_embeddings=True, batch_size=64, convert_to_numpy=True)
    index = {t: i for i, t in enumerate(unique)}
    print(f"embedded {len(unique)} texts in {time.perf_counter() - started:.1f} s")
    bank = vectors[[index[t] for t in row_text]]
    query_text = [normalise(q[1]["text"]) or q[1]["text"] for q in queries]
    sims = vectors[[index[t] for t in query_text]] @ bank.T  # (queries, rows)
    same_text = np.array([[rt == qt for rt in row_text] for qt in query_text])

    # what each (query, winning label) ends as, after command_for_label and the negation guard
    cache: dict[tuple[int, int], int] = {}

    def decided(qi: int, label: int) -> int:
        key = (qi, label)
        if key not in cache:
            _, p, context, _ = queries[qi]
            command = None
            if label >= 0 and labels[label] != "none":
                command = command_for_label(labels[label], p["text"], context)
            if command is None:
                command = Command("unknown", {"suggestions": []}, text=p["text"])
            cache[key] = outcome(p, guard_negation(p["text"], command, context, _parse_normalised))
        return cache[key]

    def label_scores(qi: int, excluded: set[int]) -> dict[int, np.ndarray]:
        """Per top_k: (labels,) scores of query qi against the bank without the excluded sets."""
        keep = ~np.isin(row_set, list(excluded)) & ~same_text[qi]
        s, lab = sims[qi][keep], row_label[keep]
        out = {}
        for k in TOP_KS:
            scores = np.full(len(labels), -1.0)
            for li in np.unique(lab):
                values = s[lab == li]
                top = np.sort(values)[-k:]
                scores[li] = top.mean()
            out[k] = scores
        return out

    def decisions(qis: list[int], excluded_extra: set[int]):
        """Per query: {k: (best label, best score, margin)} with its own set (and extra) left out."""
        found = []
        for qi in qis:
            per_k = {}
            for k, scores in label_scores(qi, excluded_extra | {queries[qi][0]}).items():
                order = np.argsort(-scores)
                per_k[k] = (int(order[0]), scores[order[0]], scores[order[0]] - scores[order[1]])
            found.append((qi, per_k))
        return found

    def evaluate(found, setting) -> tuple[int, int]:
        """(right added, wrong added) over the decided queries, vs the rules-only answer."""
        added_right = added_wrong = 0
        for qi, per_k in found:
            label, best, margin = per_k[setting["top_k"]]
            fires = best >= setting["min_similarity"] and margin >= setting["min_margin"]
            result = decided(qi, label if fires else -1)
            base = queries[qi][3]
            added_right += (result == 1) - (base == 1)
            added_wrong += (result == -1) - (base == -1)
        return added_right, added_wrong

    def calibrate(found) -> tuple[dict, tuple[int, int]]:
        best_setting, best_value, best_counts = OFF, 0.0, (0, 0)
        # strictest first, so that a tie keeps the stricter setting
        for k, s, m in itertools.product(TOP_KS, SIMILARITIES[::-1], MARGINS[::-1]):
            setting = {"min_similarity": float(s), "min_margin": float(m), "top_k": k}
            right, wrong = evaluate(found, setting)
            value = right - PENALTY * wrong
            if value > best_value:
                best_setting, best_value, best_counts = setting, value, (right, wrong)
        return best_setting, best_counts

    print(f"\nleave-one-set-out (objective: added right - {PENALTY:g} x added wrong on the other sets)")
    header = (
        f"{'held-out set':42s} {'n':>4s} {'to matcher':>10s}  {'rules R/W':>9s}  {'+matcher R/W':>12s}"
        "  thresholds"
    )
    print(header)
    grand = np.zeros(5, dtype=int)
    for fi, name in enumerate(names):
        test = [qi for qi, q in enumerate(queries) if q[0] == fi]
        calibration = [qi for qi, q in enumerate(queries) if q[0] != fi]
        setting, _ = calibrate(decisions(calibration, {fi}))
        right, wrong = evaluate(decisions(test, set()), setting)
        rules_right, rules_wrong = totals[name]["rules"]
        n = totals[name]["n"]
        grand += [n, len(test), rules_right, rules_wrong, 0]
        grand[4] += 0
        totals[name]["matcher"] = (rules_right + right, rules_wrong + wrong)
        shown = (
            "off"
            if setting is OFF
            else (
                f"sim {setting['min_similarity']:.3f} margin {setting['min_margin']:.2f} k {setting['top_k']}"
            )
        )
        print(
            f"{name:42s} {n:4d} {len(test):10d}  {rules_right:4d}/{rules_wrong:<4d}  "
            f"{rules_right + right:6d}/{rules_wrong + wrong:<5d}  {shown}"
        )
        if args.show and setting is not OFF:
            for qi, per_k in decisions(test, set()):
                label, best, margin = per_k[setting["top_k"]]
                fires = best >= setting["min_similarity"] and margin >= setting["min_margin"]
                result = decided(qi, label if fires else -1)
                if fires or result != queries[qi][3]:
                    p = queries[qi][1]
                    print(
                        f"     {['WRONG', 'unk', 'RIGHT'][result + 1]:5s} {labels[label]:24s} {best:.3f} "
                        f"{margin:.3f}  {p['text']!r} -> expected {p['kind']} {p['args']}"
                    )
    n_all = sum(t["n"] for t in totals.values())
    r_right = sum(t["rules"][0] for t in totals.values())
    r_wrong = sum(t["rules"][1] for t in totals.values())
    m_right = sum(t["matcher"][0] for t in totals.values())
    m_wrong = sum(t["matcher"][1] for t in totals.values())
    print(
        f"{'all sets':42s} {n_all:4d} {len(queries):10d}  {r_right:4d}/{r_wrong:<4d}  {m_right:6d}/{m_wrong:<5d}"
    )
    print(
        f"rules only {r_right / n_all:.1%} right, {r_wrong} wrong; "
        f"rules + matcher {m_right / n_all:.1%} right, {m_wrong} wrong "
        f"(matcher: {m_right - r_right:+d} right, {m_wrong - r_wrong:+d} wrong)"
    )

    final, counts = calibrate(decisions(list(range(len(queries))), set()))
    print(
        f"\nchosen on all sets (each phrasing scored without its own set): {final}, "
        f"added {counts[0]} right, {counts[1]} wrong"
    )
    if args.write:
        from LIMISLib.semantic_matcher import exemplars_from_files

        stored["from_phrasing_sets"] = exemplars_from_files(files)
        stored["sources"] = names
        stored["calibration"] = {
            **final,
            "procedure": "bench/calibrate_limis_matcher.py (leave-one-set-out)",
            "penalty_per_wrong": PENALTY,
        }
        stored["schema"] = 2
        EXEMPLARS_FILE.write_text(json.dumps(stored, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {EXEMPLARS_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
