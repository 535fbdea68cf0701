"""Benchmark of the LIMIS models: BBox2Mask latency per interaction and Lang2BBox forward time.

* BBox2Mask: one interaction = crop + CT window + prompt encoding + ScribblePrompt-UNet forward +
  mapping back to the slice (``ScribblePromptBBox2Mask.predict``), compared with the bare network
  forward on a prepared (1, 5, 128, 128) input measured in the same run; target overhead < 30 %.
* Lang2BBox: Grounding DINO at 512 x 512, the real "tiny" architecture (Swin-T + BERT-base, random
  weights: timings do not depend on the values) and the test-size model; ``detect`` (normalisation,
  resizing, tokenising, phrase scoring) compared with the bare model forward.

Weights are random (none can be downloaded here); the architectures are the real ones.

    python bench/bench_limis_models.py [--device cuda] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in ("AnatomyCommon", "DAPAtlasModule", "LIMIS", "CCMetricsModule"):
    sys.path.insert(0, str(ROOT / folder))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return p50, p95


def timed_pairs(first, second, repeats: int, device: str, warmup: int = 1) -> tuple[list[float], list[float]]:
    """Time two functions alternately (first, second, first, ...), so that both see the same machine load."""

    def once(fn) -> float:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for _ in range(warmup):
        first()
        second()
    a, b = [], []
    for _ in range(repeats):
        a.append(once(first))
        b.append(once(second))
    return a, b


def summary(pipeline: list[float], forward: list[float]) -> dict:
    """p50/p95 of both, and the median of the per-pair ratios (robust to load that changes over the run)."""
    ratios = [p / f for p, f in zip(pipeline, forward, strict=True)]
    return {
        "pipeline": percentiles(pipeline),
        "forward": percentiles(forward),
        "ratio": statistics.median(ratios),
    }


def phantom_liver_slice() -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The axial slice with the most liver of a 1.6 mm phantom, and the liver's box."""
    from AnatomyCommonLib.anatomy.label_schema import label_id
    from AnatomyCommonLib.anatomy.phantom import make_phantom
    from LIMISLib.slice_geometry import AxialSliceGeometry
    from LIMISLib.slice_preprocessing import bounding_box_xyxy

    phantom = make_phantom("medium", seed=0, orientation="LPS")
    geometry = AxialSliceGeometry.from_volume(phantom.ct)
    liver = phantom.labels.array == label_id("liver")
    other_axes = tuple(a for a in range(3) if a != geometry.slice_axis)
    k = int(np.argmax(liver.sum(axis=other_axes)))
    image = geometry.extract(phantom.ct.array, k).astype(np.float32)
    return image, bounding_box_xyxy(geometry.extract(liver, k))


def bench_bbox2mask(device: str, repeats: int) -> dict:
    from LIMISLib import ScribblePromptBBox2Mask, ScribblePromptUNet, enlarge_box
    from LIMISLib.ct_windows import window_for_structure
    from LIMISLib.neural.scribbleprompt_prompts import encode_prompts, minmax_normalise

    torch.manual_seed(0)
    image, box = phantom_liver_slice()
    box = enlarge_box(box, 10, image.shape)
    model = ScribblePromptBBox2Mask(ScribblePromptUNet(), device=device)
    window = window_for_structure("liver")
    first = model.predict(image, box, window=window)

    def interaction():
        model.predict(image, box, positive_clicks=[((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)],
                      previous=first, window=window)  # fmt: skip

    x = encode_prompts(minmax_normalise(image[:128, :128]), (10, 10, 100, 100)).to(device)

    def bare_forward():
        with torch.inference_mode():
            model.network(x)

    pipeline, forward = timed_pairs(interaction, bare_forward, repeats, device)

    class NoNetwork(torch.nn.Module):  # the pipeline without the network: pre- and post-processing only
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x[:, :1]

    bare_pipeline = ScribblePromptBBox2Mask(NoNetwork(), device=device)

    def processing_only():
        bare_pipeline.predict(image, box, positive_clicks=[((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)],
                              previous=first, window=window)  # fmt: skip

    processing = percentiles(timed_pairs(processing_only, lambda: None, repeats, device)[0])
    return {"slice": image.shape, "processing": processing, **summary(pipeline, forward)}


def bench_lang2bbox(device: str, repeats: int) -> list[dict]:
    from transformers import GroundingDinoConfig

    from LIMISLib.neural.grounding_dino import tiny_config

    rows = []
    image = np.random.default_rng(0).normal(0, 300, size=(512, 512)).astype(np.float32)
    for label, config in (
        ("grounding-dino-tiny architecture (Swin-T + BERT-base)", GroundingDinoConfig()),
        ("test-size model (d_model 32)", tiny_config(image_size=512)),
    ):
        rows.append(_bench_detector(label, config, image, device, repeats))
    return rows


def _bench_detector(label: str, config, image: np.ndarray, device: str, repeats: int) -> dict:
    from LIMISLib import GroundingDinoLang2BBox
    from LIMISLib.neural.grounding_dino import DetectorSettings
    from LIMISLib.organ_vocabulary import PAPER_STRUCTURES

    torch.manual_seed(0)
    detector = GroundingDinoLang2BBox.from_config(
        config, settings=DetectorSettings(image_size=512), device=device
    )
    n_parameters = sum(p.numel() for p in detector.model.parameters())
    names = list(PAPER_STRUCTURES)
    pixel_values = detector.pixel_values([detector.normalise(image)])
    text = detector.text_inputs([names])
    pixel_mask = torch.ones(1, 512, 512, dtype=torch.long, device=device)

    def bare_forward():
        with torch.inference_mode():
            detector.model(pixel_values=pixel_values, pixel_mask=pixel_mask, **text)

    def detect():
        detector.detect(image, "liver", candidates=names, score_threshold=0.0)

    n = max(3, repeats // 6) if n_parameters > 1e7 and device == "cpu" else repeats
    pipeline, forward = timed_pairs(detect, bare_forward, n, device)
    return {"label": label, "parameters": n_parameters, "n": n, **summary(pipeline, forward)}


def _ms(p50: float, p95: float) -> str:
    return f"p50 {p50 * 1e3:8.1f} ms, p95 {p95 * 1e3:8.1f} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--only", choices=["bbox2mask", "lang2bbox"], help="run one of the two benchmarks")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads")

    if args.only != "lang2bbox":
        _report_bbox2mask(bench_bbox2mask(args.device, args.repeats))
    if args.only != "bbox2mask":
        _report_lang2bbox(bench_lang2bbox(args.device, args.repeats))
    return 0


def _report_bbox2mask(result: dict) -> None:
    (p50, p95), (f50, f95) = result["pipeline"], result["forward"]
    print(f"\nBBox2Mask (ScribblePrompt-UNet, official 192-feature network), slice {result['slice']}:")
    print(f"  interaction (crop, window, prompts, forward, map back): {_ms(p50, p95)}")
    print(f"  bare network forward (1 x 5 x 128 x 128):              {_ms(f50, f95)}")
    print(f"  pre- and post-processing alone (no network):          {_ms(*result['processing'])}")
    overhead = 100 * (result["ratio"] - 1)
    print(f"  overhead (median of paired ratios): {overhead:+.1f} % (target < 30 %)")
    print(f"  overhead (processing p50 / forward p50): {100 * result['processing'][0] / f50:.1f} %")


def _report_lang2bbox(rows: list[dict]) -> None:
    print("\nLang2BBox (Grounding DINO) at 512 x 512, 11 structure names in the prompt:")
    for row in rows:
        (f50, f95), (p50, p95) = row["forward"], row["pipeline"]
        print(f"  {row['label']}: {row['parameters'] / 1e6:.1f} M parameters, {row['n']} runs")
        print(f"    bare forward {_ms(f50, f95)}")
        print(f"    detect()     {_ms(p50, p95)} (x{row['ratio']:.2f} of the forward)")


if __name__ == "__main__":
    raise SystemExit(main())
