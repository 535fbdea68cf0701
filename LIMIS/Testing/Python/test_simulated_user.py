"""The simulated-user evaluation: the oracle chooses commands from the truth, the models never see it."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from AnatomyCommonLib.anatomy.label_schema import label_id
from AnatomyCommonLib.anatomy.phantom import make_phantom
from LIMISLib.__main__ import main
from LIMISLib.reference_models import IntensityBBox2Mask
from LIMISLib.simulated_user import CaseResult, evaluate_interaction, jittered_box, summarise
from LIMISLib.slice_geometry import AxialSliceGeometry


@pytest.fixture(scope="module")
def phantom():
    return make_phantom("tiny", seed=0, orientation="LPS", n_lesions=0)


def cases_of(phantom, structures=("liver", "kidney left")):
    geometry = AxialSliceGeometry.from_volume(phantom.ct)
    for structure in structures:
        truth = phantom.labels.array == label_id(structure)
        present = [k for k in range(geometry.n_slices) if truth[k].sum() >= 16]
        yield "phantom0", phantom.ct, phantom.labels, structure, present[len(present) // 2]


class ImageRecorder(IntensityBBox2Mask):
    """The baseline, recording every argument it is given."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def predict(self, image_hu, box_xyxy, **kwargs):
        self.calls.append({"image_hu": np.array(image_hu), "box": box_xyxy, **kwargs})
        return super().predict(image_hu, box_xyxy, **kwargs)


def test_the_models_only_ever_see_ct_slices_boxes_and_clicks(phantom):
    recorder = ImageRecorder()
    results = evaluate_interaction(cases_of(phantom), recorder, steps=5)
    assert len(results) == 2 and recorder.calls
    slices = {k: phantom.ct.array[k].astype(np.float32) for k in {r.slice_index for r in results}}
    truths = [phantom.labels.array[r.slice_index] == label_id(r.structure) for r in results]
    for call in recorder.calls:
        image = np.asarray(call["image_hu"])
        assert any(np.array_equal(image, s) for s in slices.values())  # the CT slice, nothing else
        assert set(call) <= {"image_hu", "box", "positive_clicks", "negative_clicks", "previous", "window"}
        previous = call.get("previous")
        if previous is not None:  # the model's own earlier output, never the truth
            assert not any(np.array_equal(previous.logits > 0, t) for t in truths)


def test_dice_never_drops_from_step_to_step_because_the_oracle_undoes_worse_steps(phantom):
    results = evaluate_interaction(cases_of(phantom), IntensityBBox2Mask(), steps=6)
    for result in results:
        assert len(result.dice) == 7 and len(result.actions) == 7
        assert all(b >= a - 1e-9 for a, b in zip(result.dice, result.dice[1:], strict=False)), result.actions
    assert np.mean([r.dice[-1] for r in results]) > np.mean([r.dice[0] for r in results])


def test_the_first_box_is_jittered_but_still_overlaps_the_structure():
    truth = np.zeros((60, 60), bool)
    truth[20:40, 10:30] = True
    rng = np.random.default_rng(1)
    boxes = [jittered_box(truth, rng) for _ in range(20)]
    assert len({tuple(np.round(b, 3)) for b in boxes}) == 20 and (10.0, 20.0, 30.0, 40.0) not in boxes
    for x0, y0, x1, y1 in boxes:
        assert x0 < 30 and x1 > 10 and y0 < 40 and y1 > 20


def test_summary_fractions_and_change_by_hand():
    rows = [
        CaseResult("a", "liver", 1, [0.5, 0.6]),
        CaseResult("b", "liver", 2, [0.7, 0.6]),
        CaseResult("c", "spleen", 3, [0.4, 0.4]),
        CaseResult("d", "spleen", 4, [0.2, 0.5]),
    ]
    summary = summarise(rows)
    assert (summary["improved"], summary["worse"], summary["unchanged"]) == (0.5, 0.25, 0.25)
    changes = [0.1, -0.1, 0.0, 0.3]
    assert summary["mean_dice_change"] == pytest.approx(np.mean(changes))
    assert summary["sd_dice_change"] == pytest.approx(np.std(changes))
    assert summary["per_structure"]["spleen"]["mean_dice_change"] == pytest.approx(0.15)


def test_the_command_line_writes_steps_summary_and_plot(tmp_path):
    out = tmp_path / "eval"
    code = main(
        ["evaluate-interaction", "--phantom-seeds", "0", "--structures", "liver", "left kidney",
         "--steps", "3", "--slices-per-case", "1", "--out", str(out)]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cases"] == 2 and "baseline" in summary["model"]
    assert set(summary["per_structure"]) == {"liver", "kidney left"}
    rows = list(csv.DictReader((out / "steps.csv").open()))
    assert len(rows) == 2 * 4 and {r["step"] for r in rows} == {"0", "1", "2", "3"}
    assert (out / "dice_vs_step.png").stat().st_size > 5_000
    assert main(["evaluate-interaction", "--phantom-seeds", "0", "--out", str(out)]) != 0  # not empty


def test_the_oracle_types_guided_strategies_and_windows_when_the_errors_call_for_them():
    from LIMISLib.simulated_user import OracleUser

    truth = np.zeros((40, 40), bool)
    truth[10:30, 10:30] = True  # 400 px
    oracle = OracleUser(truth)
    box = (8.0, 8.0, 32.0, 32.0)  # holds the truth: no box action
    over = truth.copy()
    over[8:32, 8:32] = True  # FP 176 px, FN 0: over-segmented
    assert oracle.next_action(over, box, set()) == ("guided", "you over-segmented")
    under = np.zeros_like(truth)
    under[14:26, 14:26] = True  # FN 256 px, FP 0: under-segmented
    assert oracle.next_action(under, box, set()) == ("guided", "you under-segmented")
    elsewhere = np.zeros_like(truth)
    elsewhere[30:32, 8:32] = True  # barely touches the structure
    assert oracle.next_action(elsewhere, box, set())[1] == "wrong part"
    # no clear problem: the organ window first (when another is in use), then the adapted window
    near = truth.copy()
    near[10, 10:14] = False
    tried = set()
    assert oracle.next_action(near, box, tried, window_is_organ=False) == ("text", "organ window")
    tried.add("organ window")
    assert oracle.next_action(near, box, tried, window_is_organ=False) == ("guided", "low HU values")
    tried.add("low HU values")
    assert oracle.next_action(near, box, tried)[0] == "click"


def test_the_oracle_answers_questions_and_picks_grid_cells_from_what_it_sees():
    from LIMISLib.critical_regions import CriticalRegion
    from LIMISLib.simulated_user import OracleUser

    truth = np.zeros((40, 40), bool)
    truth[0:20, 0:40] = True  # the upper half
    oracle = OracleUser(truth)
    region = CriticalRegion((5.5, 5.5), 9, 0.5, False, 1, 1.0)
    assert oracle.answer(region) == "yes"
    assert oracle.answer(CriticalRegion((5.5, 30.5), 9, 0.5, True, 13, 1.0)) == "no"
    mask = np.zeros_like(truth)
    mask[0:10, :] = True  # rows 10-19 missed
    # a 4 x 4 grid over the whole slice: cell centres at 5, 15, 25, 35; row 15 lies in the missed band
    assert oracle.grid_click(mask, (0.0, 0.0, 40.0, 40.0), set()).startswith("positive click in cell ")
    cell = int(oracle.grid_click(mask, (0.0, 0.0, 40.0, 40.0), set()).rsplit(" ", 1)[1])
    assert 5 <= cell <= 8  # the second row of cells


def test_a_phantom_run_uses_guided_and_window_commands_and_still_never_drops(phantom):
    results = evaluate_interaction(
        cases_of(phantom, ("liver", "spleen", "kidney left", "aorta")), IntensityBBox2Mask(), steps=8
    )
    actions = [a for r in results for a in r.actions]
    assert any(a.startswith(("you over-segmented", "you under-segmented", "wrong part")) for a in actions)
    assert any(a.startswith(("organ window", "low HU values")) for a in actions)
    for result in results:
        assert all(b >= a - 1e-9 for a, b in zip(result.dice, result.dice[1:], strict=False)), result.actions
