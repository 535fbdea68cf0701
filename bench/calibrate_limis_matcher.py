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
   The calibration pool is every phrasing of those sets scored by the matcher alone (``--pool
   all``, default; the rules catch ~96 % of them, so the sentences they miss are too few to pin a
   threshold: measured +4 right / +2 wrong vs +6 / +1 with the larger pool) or only the sentences
   the rules miss (``--pool misses``);
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
        normalise,
        parse_command,
        parse_with_rules,
    )
    from LIMISLib.commands import RULES
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
    parser.add_argument(
        "--pool",
        choices=("misses", "all"),
        default="all",
        help="calibrate on every phrasing, matcher alone (default: more data, steadier thresholds) "
        "or only on the sentences the rules miss",
    )
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

    # every phrasing; "reaches" = the rules leave it to the matcher
    queries = []  # (set index, phrasing, context, rules-only outcome, reaches)
    totals = {name: {"n": 0, "rules": [0, 0], "negation": [0, 0]} for name in names}
    for si, (name, phrasings) in enumerate(sets.items()):
        for p in phrasings:
            context = ParseContext(pending=p.get("context"), choices=tuple(p.get("choices") or ()))
            result = outcome(p, parse_command(p["text"], context, semantic=False))
            totals[name]["n"] += 1
            totals[name]["rules"][0] += result == 1
            totals[name]["rules"][1] += result == -1
            totals[name]["negation"][0] += result == -1 and p.get("subset") == "negation"
            queries.append((si, p, context, result, parse_with_rules(p["text"], context) is None))
    reaching = [qi for qi, q in enumerate(queries) if q[4]]
    print(
        f"{len(rows)} exemplar rows ({sum(row_set == -1)} hand-written), {len(labels)} labels, "
        f"{len(queries)} phrasings in {len(names)} sets, {len(reaching)} reach the matcher; "
        f"calibration pool: {args.pool}"
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

    def parse_normalised(normalised: str, context):
        """The rules on normalised text, as parse_command hands them to the negation guard."""
        for rule in RULES:
            command = rule(normalised, context)
            if command is not None:
                return command
        return None

    # what each (query, winning label) ends as, after command_for_label and the negation guard
    cache: dict[tuple[int, int], int] = {}

    def decided(qi: int, label: int) -> int:
        key = (qi, label)
        if key not in cache:
            _, p, context, _, _ = queries[qi]
            command = None
            if label >= 0 and labels[label] != "none":
                command = command_for_label(labels[label], p["text"], context)
            if command is None:
                command = Command("unknown", {"suggestions": []}, text=p["text"])
            cache[key] = outcome(p, guard_negation(p["text"], command, context, parse_normalised))
        return cache[key]

    # per query and label: similarities best first, with the set of each exemplar row
    ranked: list[list[tuple[np.ndarray, np.ndarray]]] = []
    for qi in range(len(queries)):
        keep = ~same_text[qi]
        per_label = []
        for li in range(len(labels)):
            mask = keep & (row_label == li)
            order = np.argsort(-sims[qi][mask])
            per_label.append((sims[qi][mask][order], row_set[mask][order]))
        ranked.append(per_label)

    def decisions(qis: list[int], excluded_extra: set[int]) -> dict:
        """Arrays over qis: per top_k the winning label, its score and margin (own set left out),
        the outcome if it fires, the outcome when abstaining, the baseline outcome."""
        found = {"qi": np.array(qis, dtype=int)}
        best_label = {k: [] for k in TOP_KS}
        best_score = {k: [] for k in TOP_KS}
        margin = {k: [] for k in TOP_KS}
        for qi in qis:
            excluded = list(excluded_extra | {queries[qi][0]})
            scores = np.full((len(TOP_KS), len(labels)), -1.0)
            for li, (values, sets_) in enumerate(ranked[qi]):
                values = values[~np.isin(sets_, excluded)][: max(TOP_KS)]
                if len(values):
                    means = np.cumsum(values) / np.arange(1, len(values) + 1)
                    for ki, k in enumerate(TOP_KS):
                        scores[ki, li] = means[min(k, len(values)) - 1]
            for ki, k in enumerate(TOP_KS):
                order = np.argsort(-scores[ki])
                best_label[k].append(int(order[0]))
                best_score[k].append(scores[ki, order[0]])
                margin[k].append(scores[ki, order[0]] - scores[ki, order[1]])
        for k in TOP_KS:
            found[k] = (
                np.array(best_label[k]),
                np.array(best_score[k]),
                np.array(margin[k]),
                np.array([decided(qi, lab) for qi, lab in zip(qis, best_label[k], strict=True)]),
            )
        found["abstain"] = np.array([decided(qi, -1) for qi in qis])
        # baseline: the rules' answer where the matcher is reached, else abstaining (matcher alone)
        found["base"] = np.array([queries[qi][3] if queries[qi][4] else decided(qi, -1) for qi in qis])
        return found

    def fires(found, setting) -> np.ndarray:
        _, best, margin, _ = found[setting["top_k"]]
        return (best >= setting["min_similarity"]) & (margin >= setting["min_margin"])

    def evaluate(found, setting) -> tuple[int, int]:
        """(right added, wrong added) over the decided queries, vs the baseline."""
        result = np.where(fires(found, setting), found[setting["top_k"]][3], found["abstain"])
        base = found["base"]
        return int((result == 1).sum() - (base == 1).sum()), int((result == -1).sum() - (base == -1).sum())

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

    def pool(qis: list[int]) -> list[int]:
        return qis if args.pool == "all" else [qi for qi in qis if queries[qi][4]]

    print(f"\nleave-one-set-out (objective: added right - {PENALTY:g} x added wrong on the other sets)")
    header = (
        f"{'held-out set':42s} {'n':>4s} {'to matcher':>10s}  {'rules R/W':>9s}  {'+matcher R/W':>12s}"
        "  thresholds"
    )
    print(header)
    for fi, name in enumerate(names):
        test = [qi for qi in reaching if queries[qi][0] == fi]
        calibration = pool([qi for qi, q in enumerate(queries) if q[0] != fi])
        setting, _ = calibrate(decisions(calibration, {fi}))
        found = decisions(test, set())
        right, wrong = evaluate(found, setting)
        rules_right, rules_wrong = totals[name]["rules"]
        n = totals[name]["n"]
        totals[name]["matcher"] = (rules_right + right, rules_wrong + wrong)
        result = np.where(fires(found, setting), found[setting["top_k"]][3], found["abstain"])
        negated = np.array([queries[qi][1].get("subset") == "negation" for qi in test], dtype=bool)
        totals[name]["negation"][1] = totals[name]["negation"][0] + int(
            ((result == -1) & negated).sum() - ((found["base"] == -1) & negated).sum()
        )
        shown = (
            "off"
            if setting is OFF
            else f"sim {setting['min_similarity']:.3f} margin {setting['min_margin']:.2f} "
            f"k {setting['top_k']}"
        )
        print(
            f"{name:42s} {n:4d} {len(test):10d}  {rules_right:4d}/{rules_wrong:<4d}  "
            f"{rules_right + right:6d}/{rules_wrong + wrong:<5d}  {shown}"
        )
        if args.show and setting is not OFF:
            label, best, margin, if_fired = found[setting["top_k"]]
            fired = fires(found, setting)
            for i, qi in enumerate(test):
                result = if_fired[i] if fired[i] else found["abstain"][i]
                if fired[i] or result != found["base"][i]:
                    p = queries[qi][1]
                    print(
                        f"     {['WRONG', 'unk', 'RIGHT'][result + 1]:5s} {labels[label[i]]:24s} "
                        f"{best[i]:.3f} "
                        f"{margin[i]:.3f}  {p['text']!r} -> expected {p['kind']} {p['args']}"
                    )
    n_all = sum(t["n"] for t in totals.values())
    r_right = sum(t["rules"][0] for t in totals.values())
    r_wrong = sum(t["rules"][1] for t in totals.values())
    m_right = sum(t["matcher"][0] for t in totals.values())
    m_wrong = sum(t["matcher"][1] for t in totals.values())
    print(
        f"{'all sets':42s} {n_all:4d} {len(reaching):10d}  {r_right:4d}/{r_wrong:<4d}  "
        f"{m_right:6d}/{m_wrong:<5d}"
    )
    print(
        f"rules only {r_right / n_all:.1%} right, {r_wrong} wrong; "
        f"rules + matcher {m_right / n_all:.1%} right, {m_wrong} wrong "
        f"(matcher: {m_right - r_right:+d} right, {m_wrong - r_wrong:+d} wrong)"
    )
    n_negation = sum(p.get("subset") == "negation" for q in sets.values() for p in q)
    print(
        f"negation/scope ({n_negation} phrasings) confidently wrong: rules only "
        f"{sum(t['negation'][0] for t in totals.values())}, rules + matcher "
        f"{sum(t['negation'][1] for t in totals.values())}"
    )

    final, counts = calibrate(decisions(pool(list(range(len(queries)))), set()))
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
