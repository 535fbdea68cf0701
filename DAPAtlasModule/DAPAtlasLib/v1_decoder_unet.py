"""Old dotted name of :class:`DAPAtlasLib.nnunet.v1_decoder_unet.PlainConvUNetV1Decoder`.

Model folders converted before the class moved name it ``DAPAtlasLib.v1_decoder_unet`` in their
``plans.json``; nnU-Net imports it from there. Resolved lazily so this module needs no torch.
"""


def __getattr__(name: str):
    if name == "PlainConvUNetV1Decoder":
        from .nnunet.v1_decoder_unet import PlainConvUNetV1Decoder

        return PlainConvUNetV1Decoder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
