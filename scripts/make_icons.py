"""Draw the 128x128 module icons and the extension icon (run once; the PNGs are committed)."""

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
SIZE = 128


def _canvas():
    image = Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 0))
    return image, ImageDraw.Draw(image)


def dap_atlas_icon() -> Image.Image:
    image, draw = _canvas()
    skin = (236, 200, 170, 255)
    draw.ellipse((48, 6, 80, 38), fill=skin)  # head
    draw.rounded_rectangle((36, 38, 92, 92), radius=14, fill=skin)  # torso
    draw.rounded_rectangle((40, 88, 62, 124), radius=8, fill=skin)  # legs
    draw.rounded_rectangle((66, 88, 88, 124), radius=8, fill=skin)
    draw.ellipse((42, 42, 62, 70), fill=(120, 170, 230, 255))  # right lung (image left)
    draw.ellipse((66, 42, 86, 70), fill=(120, 170, 230, 255))
    draw.ellipse((58, 52, 74, 68), fill=(210, 60, 60, 255))  # heart
    draw.ellipse((40, 68, 66, 86), fill=(150, 70, 40, 255))  # liver
    draw.ellipse((70, 70, 84, 82), fill=(170, 90, 170, 255))  # spleen
    draw.rectangle((62, 40, 66, 92), fill=(245, 245, 230, 255))  # spine
    return image


def limis_icon() -> Image.Image:
    image, draw = _canvas()
    draw.rounded_rectangle((6, 6, 122, 84), radius=16, fill=(60, 110, 190, 255))
    draw.polygon([(30, 82), (26, 110), (54, 82)], fill=(60, 110, 190, 255))
    draw.text((16, 16), '"liver"', fill=(255, 255, 255, 255), font_size=26)
    draw.rectangle((62, 48, 114, 78), outline=(255, 220, 60, 255), width=3)
    draw.ellipse((68, 52, 108, 74), fill=(150, 70, 40, 255))
    draw.ellipse((80, 96, 122, 124), fill=(90, 200, 120, 255))
    draw.line((90, 110, 98, 118, 114, 100), fill=(255, 255, 255, 255), width=4)
    return image


def cc_metrics_icon() -> Image.Image:
    sites = np.array([[34, 38], [92, 30], [64, 96]])
    radii = np.array([18, 10, 14])
    colors = np.array([[230, 120, 90], [90, 160, 230], [120, 200, 120]])
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    distance = np.stack(
        [np.hypot(xx - x, yy - y) - r for (x, y), r in zip(sites, radii, strict=True)], axis=0
    )
    region = np.argmin(distance, axis=0)
    rgb = (colors[region] * 0.55 + 255 * 0.45).astype(np.uint8)
    inside = np.min(distance, axis=0) <= 0
    rgb[inside] = colors[region[inside]]
    border = np.zeros_like(inside)
    border[:-1] |= region[:-1] != region[1:]
    border[:, :-1] |= region[:, :-1] != region[:, 1:]
    rgb[border] = (40, 40, 40)
    alpha = np.full((SIZE, SIZE, 1), 255, np.uint8)
    image = Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA")
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, SIZE - 1, SIZE - 1), radius=18, outline=(40, 40, 40, 255), width=3)
    return image


def extension_icon() -> Image.Image:
    image, _ = _canvas()
    for icon, position in (
        (dap_atlas_icon(), (0, 0)),
        (limis_icon(), (64, 0)),
        (cc_metrics_icon(), (32, 64)),
    ):
        image.alpha_composite(icon.resize((64, 64), Image.LANCZOS), position)
    return image


def main() -> None:
    outputs = {
        ROOT / "DAPAtlasModule/Resources/Icons/DAPAtlasModule.png": dap_atlas_icon(),
        ROOT / "LIMIS/Resources/Icons/LIMIS.png": limis_icon(),
        ROOT / "CCMetricsModule/Resources/Icons/CCMetricsModule.png": cc_metrics_icon(),
        ROOT / "Resources/Icons/SlicerAnatomyToolkit.png": extension_icon(),
    }
    for path, icon in outputs.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        icon.save(path)
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
