"""Hidden Slicer module that ships AnatomyCommonLib, the code the toolkit's modules share.

It has no GUI. Slicer installs every scripted module of the extension into one folder on
``sys.path``, so ``import AnatomyCommonLib`` works from DAP Atlas, LIMIS and CC-Metrics.
"""

from slicer.ScriptedLoadableModule import ScriptedLoadableModule


class AnatomyCommon(ScriptedLoadableModule):
    """Metadata only: image IO, geometry, the MRML bridge and the weights manager live in AnatomyCommonLib."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Anatomy Toolkit Common"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["Slicer Anatomy Toolkit contributors (slicer-anatomy-toolkit on GitHub)"]
        self.parent.helpText = (
            "Shared library of the Slicer Anatomy Toolkit (image IO with geometry, MRML conversions, "
            "model weights manager). It has no user interface."
        )
        self.parent.acknowledgementText = "Part of the Slicer Anatomy Toolkit extension."
        self.parent.hidden = True
