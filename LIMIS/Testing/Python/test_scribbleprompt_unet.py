"""ScribblePrompt-UNet has the official checkpoint layout and computes the official network."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as nnf  # noqa: E402

from LIMISLib import ScribblePromptUNet  # noqa: E402
from LIMISLib.exceptions import CorruptWeightsError  # noqa: E402
from LIMISLib.neural.scribbleprompt_unet import load_official_state_dict  # noqa: E402

pytestmark = pytest.mark.torch

#: The 29 keys and shapes of ScribblePrompt_unet_v1_nf192_res128.pt, written out from the release notes.
OFFICIAL_KEYS = {
    **{f"ups.{i}.conv.0.weight": (192, 384, 3, 3) for i in (1, 3, 5, 7)},
    **{f"ups.{i}.conv.0.bias": (192,) for i in (1, 3, 5, 7)},
    **{f"ups.{i}.conv.1.weight": (1,) for i in (1, 3, 5, 7)},
    "downs.0.conv.0.weight": (192, 5, 3, 3),
    **{f"downs.{i}.conv.0.weight": (192, 192, 3, 3) for i in (1, 2, 3)},
    **{f"downs.{i}.conv.0.bias": (192,) for i in range(4)},
    **{f"downs.{i}.conv.1.weight": (1,) for i in range(4)},
    "bottleneck.conv.0.weight": (192, 192, 3, 3),
    "bottleneck.conv.0.bias": (192,),
    "bottleneck.conv.1.weight": (1,),
    "final_conv.conv.0.weight": (1, 192, 1, 1),
    "final_conv.conv.0.bias": (1,),
}


def randomised_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights for every key, PReLU slopes included (they default to one shared 0.25)."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in OFFICIAL_KEYS.items():
        scale = 0.5 if key.endswith("conv.1.weight") else 0.05
        state[key] = torch.randn(shape, generator=generator) * scale
    return state


def reference_forward(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The official architecture written with functional ops only, from its description."""

    def block(prefix: str, h: torch.Tensor, activation: bool = True, padding: int = 1) -> torch.Tensor:
        h = nnf.conv2d(h, state[f"{prefix}.conv.0.weight"], state[f"{prefix}.conv.0.bias"], padding=padding)
        return nnf.prelu(h, state[f"{prefix}.conv.1.weight"]) if activation else h

    skips = []
    for i in range(4):
        x = block(f"downs.{i}", x)
        skips.append(x)
        x = nnf.max_pool2d(x, 2)
    x = block("bottleneck", x)
    for i, skip in zip((1, 3, 5, 7), reversed(skips), strict=True):
        x = nnf.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        x = block(f"ups.{i}", torch.cat((skip, x), dim=1))
    return block("final_conv", x, activation=False, padding=0)


def test_state_dict_has_exactly_the_29_official_keys_and_shapes():
    state = ScribblePromptUNet().state_dict()
    assert len(state) == 29
    assert {key: tuple(value.shape) for key, value in state.items()} == OFFICIAL_KEYS


def test_the_official_configuration_has_3_991_882_parameters():
    assert sum(p.numel() for p in ScribblePromptUNet().parameters()) == 3_991_882


def test_forward_equals_an_independent_functional_reference_with_random_weights():
    torch.manual_seed(1)
    state = randomised_state()
    network = ScribblePromptUNet()
    network.load_state_dict(state, strict=True)
    x = torch.randn(1, 5, 128, 128)
    with torch.no_grad():
        ours = network(x)
        reference = reference_forward(state, x)
    assert ours.shape == (1, 1, 128, 128)
    assert torch.allclose(ours, reference, atol=1e-5, rtol=1e-4)


def test_upsampling_uses_align_corners_true():
    ups = [m for m in ScribblePromptUNet().ups if isinstance(m, torch.nn.UpsamplingBilinear2d)]
    assert len(ups) == 4
    x = torch.arange(4.0).reshape(1, 1, 2, 2)
    assert torch.equal(ups[0](x), nnf.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))


def test_checkpoint_file_loads_strictly_with_and_without_the_compile_prefix(tmp_path):
    state = randomised_state(3)
    plain = tmp_path / "ScribblePrompt_unet_v1_nf192_res128.pt"
    torch.save(state, plain)
    compiled = tmp_path / "compiled.pt"
    torch.save({f"_orig_mod.{k}": v for k, v in state.items()}, compiled)
    for path in (plain, compiled):
        network = ScribblePromptUNet.from_checkpoint(path)
        assert not network.training
        for key, value in network.state_dict().items():
            assert torch.equal(value, state[key]), key


def test_a_checkpoint_with_other_keys_is_refused_naming_them():
    state = randomised_state()
    state.pop("ups.7.conv.0.bias")
    state["decoder.extra.weight"] = torch.zeros(3)
    state["downs.0.conv.0.weight"] = torch.zeros(64, 5, 3, 3)
    with pytest.raises(CorruptWeightsError) as error:
        load_official_state_dict(ScribblePromptUNet(), state)
    message = str(error.value)
    assert "ups.7.conv.0.bias" in message
    assert "decoder.extra.weight" in message
    assert "downs.0.conv.0.weight" in message and "(64, 5, 3, 3)" in message


def test_an_unreadable_checkpoint_is_a_corrupt_weights_error(tmp_path):
    path = tmp_path / "broken.pt"
    path.write_bytes(b"not a torch file")
    with pytest.raises(CorruptWeightsError, match=r"broken\.pt"):
        ScribblePromptUNet.from_checkpoint(path)
