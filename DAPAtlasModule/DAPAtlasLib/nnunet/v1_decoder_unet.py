"""A PlainConvUNet whose decoder uses nnU-Net v1's convolution kernel sizes.

nnU-Net v1's ``Generic_UNet`` gives decoder stage ``u`` (0 = lowest resolution) the kernel size
of the encoder stage *below* its skip connection (``conv_kernel_sizes[-(u + 1)]``), while v2's
``PlainConvUNet`` uses the kernel of the skip's own stage (``kernel_sizes[-(u + 2)]``). When all
stages share one kernel size (the usual 3x3x3) both agree and the converter writes a plain
``PlainConvUNet``; when they differ (anisotropic plans with 1x3x3 kernels in the first stages)
it writes this class, which the ``nnunetv2`` predictor imports by its dotted name from the
converted ``plans.json`` (so ``DAPAtlasLib`` must be importable where that model runs).

This module imports torch and dynamic_network_architectures; import it only when needed.
"""

from __future__ import annotations

from collections.abc import Sequence

from dynamic_network_architectures.architectures.unet import PlainConvUNet
from dynamic_network_architectures.building_blocks.simple_conv_blocks import StackedConvBlocks


class PlainConvUNetV1Decoder(PlainConvUNet):
    """``PlainConvUNet`` plus ``decoder_kernel_sizes`` (one kernel per decoder stage, lowest first)."""

    def __init__(self, *args, decoder_kernel_sizes: Sequence[Sequence[int]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        encoder = self.encoder
        stages = self.decoder.stages
        if len(decoder_kernel_sizes) != len(stages):
            raise ValueError(
                f"decoder_kernel_sizes needs one entry per decoder stage ({len(stages)}), "
                f"got {len(decoder_kernel_sizes)}."
            )
        nonlin_first = kwargs.get("nonlin_first", False)
        for s, kernel in enumerate(decoder_kernel_sizes):
            skip_features = encoder.output_channels[-(s + 2)]
            stages[s] = StackedConvBlocks(
                len(stages[s].convs),
                encoder.conv_op,
                2 * skip_features,
                skip_features,
                list(kernel),
                1,
                encoder.conv_bias,
                encoder.norm_op,
                encoder.norm_op_kwargs,
                encoder.dropout_op,
                encoder.dropout_op_kwargs,
                encoder.nonlin,
                encoder.nonlin_kwargs,
                nonlin_first,
            )
