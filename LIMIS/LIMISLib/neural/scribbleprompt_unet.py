"""ScribblePrompt-UNet, the BBox2Mask network of LIMIS, with the official checkpoint layout.

The architecture is that of the authors' released model (Wong et al., ScribblePrompt, ECCV 2024;
github halleewong/ScribblePrompt, Apache-2.0), written here from its description:

* every block is one 3x3 convolution (padding 1) followed by a PReLU with a single shared
  parameter, kept in an ``nn.Sequential`` called ``conv``; no normalisation anywhere;
* encoder ``downs``: 4 blocks (5 -> 192, then 192 -> 192); each output is kept as a skip
  connection and max-pooled by 2 (128 -> 64 -> 32 -> 16 -> 8); ``bottleneck``: one block at 8x8;
* decoder ``ups``: 8 modules alternating a parameter-free bilinear x2 upsampling with
  ``align_corners=True`` (``nn.UpsamplingBilinear2d``) and a block 384 -> 192 applied to
  ``cat((skip, x), dim=1)``;
* ``final_conv``: a 1x1 convolution 192 -> 1 without activation; the output is logits.

Input (B, 5, 128, 128): image, box, positive clicks/scribbles, negative clicks/scribbles,
previous logits (see :mod:`LIMISLib.neural.scribbleprompt_prompts`). Output (B, 1, 128, 128) logits.
``state_dict()`` has exactly the 29 keys and shapes of ``ScribblePrompt_unet_v1_nf192_res128.pt``
(:data:`OFFICIAL_STATE_DICT_SHAPES`), so the official file loads with ``strict=True``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from ..exceptions import CorruptWeightsError

#: Input channels of the network, in order.
INPUT_CHANNELS: tuple[str, ...] = ("image", "box", "positive", "negative", "previous_logits")
#: The network's input and output resolution (pixels per side).
INPUT_SIZE = 128
#: Prefix that ``torch.compile`` adds to state_dict keys; stripped on load.
COMPILE_PREFIX = "_orig_mod."


def _official_shapes() -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}

    def block(prefix: str, c_in: int, c_out: int, kernel: int = 3, activation: bool = True) -> None:
        shapes[f"{prefix}.conv.0.weight"] = (c_out, c_in, kernel, kernel)
        shapes[f"{prefix}.conv.0.bias"] = (c_out,)
        if activation:
            shapes[f"{prefix}.conv.1.weight"] = (1,)

    for index in (1, 3, 5, 7):
        block(f"ups.{index}", 384, 192)
    block("downs.0", 5, 192)
    for index in (1, 2, 3):
        block(f"downs.{index}", 192, 192)
    block("bottleneck", 192, 192)
    block("final_conv", 192, 1, kernel=1, activation=False)
    return shapes


#: The 29 keys and shapes of the official ``ScribblePrompt_unet_v1_nf192_res128.pt``.
OFFICIAL_STATE_DICT_SHAPES: dict[str, tuple[int, ...]] = _official_shapes()


class ConvBlock(nn.Module):
    """``conv`` = Sequential(Conv2d, PReLU) (the PReLU is left out for the final 1x1 block)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, activation: bool = True
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, padding=(kernel_size - 1) // 2)
        ]
        if activation:
            layers.append(nn.PReLU())
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ScribblePromptUNet(nn.Module):
    """The ScribblePrompt-UNet; with no arguments, the official configuration (5 -> 1, 4 x 192 features)."""

    def __init__(
        self, in_channels: int = 5, out_channels: int = 1, features: Sequence[int] = (192, 192, 192, 192)
    ) -> None:
        super().__init__()
        features = list(features)
        self.in_channels = in_channels
        self.downs = nn.ModuleList()
        channels = in_channels
        for width in features:
            self.downs.append(ConvBlock(channels, width))
            channels = width
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)
        self.bottleneck = ConvBlock(features[-1], features[-1])
        self.ups = nn.ModuleList()
        for width in reversed(features):
            self.ups.append(nn.UpsamplingBilinear2d(scale_factor=2))  # align_corners=True
            self.ups.append(ConvBlock(2 * width, width))
        self.final_conv = ConvBlock(features[0], out_channels, kernel_size=1, activation=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 5, H, W) prompts -> (B, 1, H, W) logits; H and W must be divisible by 16."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"ScribblePromptUNet expects (B, {self.in_channels}, H, W), got {tuple(x.shape)}."
            )
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for index in range(0, len(self.ups), 2):
            x = self.ups[index](x)
            x = self.ups[index + 1](torch.cat((skips.pop(), x), dim=1))
        return self.final_conv(x)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "cpu") -> ScribblePromptUNet:
        """The official network with weights from ``path`` (a plain state_dict, ``_orig_mod.`` allowed)."""
        network = cls()
        load_official_state_dict(network, read_checkpoint(path))
        return network.to(device).eval()


def read_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict from a ``.pt`` file (tensors only: ``weights_only=True``), on the CPU."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # pickle errors, truncated files, ...
        raise CorruptWeightsError(
            f"Cannot read the checkpoint {path}: {error}. Download it again."
        ) from error
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise CorruptWeightsError(f"{path} holds a {type(state).__name__}, not a state_dict.")
    return dict(state)


def strip_compile_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys without the ``_orig_mod.`` prefix that ``torch.compile`` adds during training."""
    return {
        (key[len(COMPILE_PREFIX) :] if key.startswith(COMPILE_PREFIX) else key): value
        for key, value in state_dict.items()
    }


def check_state_dict_layout(
    state_dict: Mapping[str, torch.Tensor], expected: Mapping[str, tuple[int, ...]], *, what: str
) -> None:
    """Raise :class:`CorruptWeightsError` naming missing, unexpected and mis-shaped keys."""
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    wrong = [
        f"{key} {tuple(state_dict[key].shape)} (expected {tuple(shape)})"
        for key, shape in expected.items()
        if key in state_dict and tuple(state_dict[key].shape) != tuple(shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        for label, items in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("wrong shapes", wrong),
        ):
            if items:
                shown = ", ".join(items[:5]) + (f" and {len(items) - 5} more" if len(items) > 5 else "")
                parts.append(f"{label}: {shown}")
        raise CorruptWeightsError(
            f"The checkpoint does not have the layout of {what} ({'; '.join(parts)}). "
            "It is another model or another version: use the official file."
        )


def load_official_state_dict(network: ScribblePromptUNet, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load the official weights with ``strict=True`` after checking the 29-key layout."""
    state = strip_compile_prefix(state_dict)
    expected = {key: tuple(value.shape) for key, value in network.state_dict().items()}
    check_state_dict_layout(state, expected, what="ScribblePrompt_unet_v1_nf192_res128.pt")
    network.load_state_dict(state, strict=True)
