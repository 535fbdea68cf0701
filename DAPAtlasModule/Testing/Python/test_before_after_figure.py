"""The before/after PNG of the post-processing: written atomically with the umask's mode."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from AnatomyCommonLib.errors import OutputExistsError
from AnatomyCommonLib.volume import Volume
from DAPAtlasLib.before_after_figure import render_before_after


def volumes():
    ct = Volume.from_geometry(np.full((12, 14, 16), -50.0, dtype=np.float32), spacing_mm=(1.5, 1.0, 2.0))
    before = np.zeros(ct.array.shape, dtype=np.uint8)
    before[3:9, 4:10, 5:11] = 5
    after = before.copy()
    after[3:5] = 0
    return ct, ct.with_array(before), ct.with_array(after)


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o077, 0o600)])
def test_before_after_png_gets_the_umask_mode(tmp_path, umask, expected):
    old = os.umask(umask)
    try:
        out = render_before_after(tmp_path / "before_after.png", *volumes())
    finally:
        os.umask(old)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stat.S_IMODE(out.stat().st_mode) == expected
    assert [p.name for p in tmp_path.iterdir()] == ["before_after.png"]  # no temporary left


def test_an_existing_png_is_not_replaced(tmp_path):
    target = tmp_path / "before_after.png"
    target.write_bytes(b"mine")
    with pytest.raises(OutputExistsError):
        render_before_after(target, *volumes())
    assert target.read_bytes() == b"mine"


def test_figure_has_letters_legend_scale_and_no_clipped_text_or_empty_margins():
    from AnatomyCommonLib.anatomy.phantom import make_phantom
    from DAPAtlasLib.before_after_figure import before_after_figure
    from DAPAtlasLib.postprocess import postprocess
    from DAPAtlasLib.simulated_model_errors import inject_model_errors

    phantom = make_phantom("tiny", seed=0, sex="M")
    corrupted = inject_model_errors(phantom.labels, sex="M")
    repaired = postprocess(corrupted.labels, ct=phantom.ct, sex="M").labels
    figure = before_after_figure(phantom.ct, corrupted.labels, repaired)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    page = figure.bbox
    texts = [*figure.texts, *[t for legend in figure.legends for t in legend.get_texts()]]
    if figure._suptitle is not None:
        texts.append(figure._suptitle)
    for axes in figure.axes:  # the axes are off: their tick labels are not drawn
        texts += [*axes.texts, axes.title]
    shown = [t for t in texts if t.get_visible() and t.get_text().strip()]
    for text in shown:  # nothing cut off at the page edge
        box = text.get_window_extent(renderer)
        assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1, text.get_text()
        assert page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1, text.get_text()
    words = [t.get_text() for t in shown]
    for letter in "RLAPSI":
        assert letter in words
    assert any("mm" in w for w in words)  # scale bar
    assert figure.legends and any("changed" in t.get_text() for t in figure.legends[0].get_texts())
    for axes in figure.axes:  # every panel cropped to the body: content reaches near each edge
        image = axes.get_images()[0].get_array()
        content = np.asarray(image)[..., :3].max(axis=2) > 0.03
        rows, cols = np.flatnonzero(content.any(axis=1)), np.flatnonzero(content.any(axis=0))
        assert rows[0] <= 6 and cols[0] <= 6
        assert content.shape[0] - 1 - rows[-1] <= 6 and content.shape[1] - 1 - cols[-1] <= 6
