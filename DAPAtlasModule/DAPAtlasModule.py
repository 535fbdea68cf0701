"""DAP Atlas: whole-body CT -> 142 anatomical structures, anatomical-rule repair, statistics.

This file is the thin Slicer layer (widget <-> parameter node <-> DAPAtlasLib). Every
algorithm lives in DAPAtlasLib and runs without Slicer; MRML conversions go through
AnatomyCommonLib.slicer_bridge and DAPAtlasLib.mrml_nodes.
"""

import logging
import os
import threading
from typing import Annotated, Union

import slicer
import vtk
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

#: Post-processing step name -> parameter node field of its check box (run order).
STEP_PARAMETERS = {
    "left_right_split": "stepLeftRightSplit",
    "spine_fragments": "stepSpineFragments",
    "rib_order": "stepRibCounting",  # one check box for both rib rules
    "rib_counting": "stepRibCounting",
    "cheeks": "stepCheeks",
    "body_part_limits": "stepBodyPartLimits",
    "sex_consistency": "stepSexConsistency",
    "largest_component": "stepLargestComponent",
    "skull_from_ct": "stepSkullFromCt",
}


class DAPAtlasModule(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "DAP Atlas"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = ["AnatomyCommon"]
        self.parent.contributors = ["Slicer Anatomy Toolkit contributors (slicer-anatomy-toolkit on GitHub)"]
        self.parent.helpText = (
            "Whole-body CT segmentation into the 142 structures of the Dense Anatomical Prediction (DAP) "
            "Atlas, anatomical-rule post-processing (left/right split, rib counting, body-part limits, "
            "sex consistency, largest-component suppression, rule-derived skull) and per-structure "
            "volume and HU statistics. "
            '<a href="https://github.com/alexanderjaus/AtlasDataset">DAP Atlas dataset and models</a>.'
        )
        self.parent.acknowledgementText = (
            "DAP Atlas: Jaus et al., 'Towards unifying anatomy segmentation: automated generation of a "
            "full-body CT dataset', ICIP 2024. Models and label definitions by the DAP Atlas authors "
            "(Apache-2.0)."
        )


@parameterNodeWrapper
class DAPAtlasModuleParameterNode:
    """GUI state, saved with the scene.

    A str bound to a QComboBox needs the ``Choice`` annotation (Slicer's
    QComboBoxToStringableConnector raises without it and fills the combo box from the choices);
    a Union of node types needs ``None`` in it, or the wrapper cannot store its default (None).
    """

    phantomSize: Annotated[str, Choice(["tiny", "small", "medium", "realistic"])] = "tiny"
    phantomSex: Annotated[str, Choice(["M", "F"])] = "M"
    inputVolume: slicer.vtkMRMLScalarVolumeNode
    modelOutput: Union[slicer.vtkMRMLSegmentationNode, slicer.vtkMRMLLabelMapVolumeNode, None]  # noqa: UP007
    sex: Annotated[str, Choice(["auto", "M", "F"])] = "auto"
    stepLeftRightSplit: bool = True
    stepSpineFragments: bool = True
    stepRibCounting: bool = True
    stepCheeks: bool = True
    stepBodyPartLimits: bool = True
    stepSexConsistency: bool = True
    stepLargestComponent: bool = True
    stepSkullFromCt: bool = True
    forceNonCT: bool = False  # --force: accept an input that does not look like a CT in HU
    outputSegmentation: slicer.vtkMRMLSegmentationNode
    segmentVolume: slicer.vtkMRMLScalarVolumeNode
    segmentModel: Annotated[str, Choice(["dap-atlas-v2", "dap-atlas-v1"])] = "dap-atlas-v2"
    segmentDevice: Annotated[str, Choice(["auto", "cpu", "cuda"])] = "auto"
    postprocessAfterSegment: bool = False


def _cancelStartedProcess(startJob) -> None:
    """Wait for a cancelled start job; kill the model process it may still have started."""
    process = startJob.wait().result
    if process is not None:
        process.cancel()


class DAPAtlasModuleWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Widget <-> parameter node; actions call DAPAtlasModuleLogic."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._lastResult = None
        self._segmentJob = None  # the running background segmentation (DAPAtlasLib.segmentation_job)
        self._segmentCtNode = None
        self._applyJob = None  # the running post-processing or statistics (a ThreadJob of the logic's worker)
        self._applyInputs = None
        self._applyFinish = None  # main-thread callback(inputs, update) of the finished job
        self._importJob = None  # reading + segment building of a finished segmentation (a ThreadJob)
        self._startJob = None  # writing the CT + starting the model process (a ThreadJob)

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/DAPAtlasModule.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = DAPAtlasModuleLogic()

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.loadPhantomButton.connect("clicked(bool)", self.onLoadPhantom)
        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.ui.cancelApplyButton.connect("clicked(bool)", self.onCancelApply)
        self.ui.showStatisticsButton.connect("clicked(bool)", self.onShowStatistics)
        self.ui.systemsListWidget.connect("itemChanged(QListWidgetItem*)", self.onSystemToggled)
        self.ui.outputSegmentationSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.updateSystemList)
        self.ui.segmentButton.connect("clicked(bool)", self.onSegment)
        self.ui.cancelSegmentButton.connect("clicked(bool)", self.onCancelSegment)
        # activated: user choices only (not the parameter node filling the combo box on connectGui,
        # which would overwrite the saved postprocessAfterSegment on every module enter)
        self.ui.segmentModelComboBox.connect("activated(int)", self.onSegmentModelChanged)
        import qt

        self._segmentTimer = qt.QTimer()
        self._segmentTimer.setInterval(200)  # poll the background process; the GUI never blocks on it
        self._segmentTimer.connect("timeout()", self.onPollSegmentation)
        self._applyTimer = qt.QTimer()
        self._applyTimer.setInterval(100)  # poll the post-processing job
        self._applyTimer.connect("timeout()", self.onPollApply)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.onCancelSegment(wait=True)  # closing: make sure no child process outlives the module
        self.onCancelApply()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)

    def onSceneStartClose(self, caller, event) -> None:
        self.onCancelSegment()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            node = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if node:
                self._parameterNode.inputVolume = node
        if not self._parameterNode.segmentVolume and self._parameterNode.inputVolume:
            self._parameterNode.segmentVolume = self._parameterNode.inputVolume

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
            self._checkCanApply()

    def _checkCanApply(self, caller=None, event=None) -> None:
        p = self._parameterNode
        ready = bool(p and p.inputVolume and p.modelOutput)
        self.ui.applyButton.enabled = ready
        self.ui.applyButton.toolTip = (
            "Apply the selected anatomical rules; the result is a new segmentation."
            if ready
            else "Select the CT volume and the model output (label map or segmentation) first."
        )

    def selectedSteps(self) -> list:
        return [step for step, field in STEP_PARAMETERS.items() if getattr(self._parameterNode, field)]

    def onLoadPhantom(self) -> None:
        with slicer.util.tryWithErrorDisplay("Failed to create the phantom.", waitCursor=True):
            p = self._parameterNode
            volumeNode, segmentationNode = self.logic.loadPhantom(size=p.phantomSize, sex=p.phantomSex)
            p.inputVolume = volumeNode
            p.modelOutput = segmentationNode
            self.ui.statusLabel.text = (
                f"Loaded {volumeNode.GetName()} and {segmentationNode.GetName()} "
                f"({segmentationNode.GetSegmentation().GetNumberOfSegments()} structures)."
            )

    @staticmethod
    def _installRequirements(self, requirements) -> bool:
        """Ask the user to install what is missing, then install (no wait cursor under the dialog).

        False when the user declined (a calm status line) or the install failed (an error dialog).
        """
        from AnatomyCommonLib.dependencies import InstallDeclined, ensure_requirements

        names, requester, needTorch = requirements
        try:
            with slicer.util.tryWithErrorDisplay(f"{requester}: the Python packages could not be installed."):
                ensure_requirements(names, requester, need_torch=needTorch)
            return True
        except InstallDeclined as declined:
            self.ui.statusLabel.text = declined.message
        except Exception:  # shown by tryWithErrorDisplay
            pass
        return False

    def _confirmWeights(self, model: str) -> bool:
        """Make sure ``model``'s weights are there; else ask for the unpacked download. False: declined."""
        from AnatomyCommonLib.errors import MissingWeightsError

        try:
            self.logic.checkWeights(model)
            return True
        except MissingWeightsError as error:
            hint = str(error)
        if not slicer.util.confirmOkCancelDisplay(
            hint + "\n\nPress OK to select the unpacked download now (used in place).",
            windowTitle="DAP Atlas weights",
        ):
            return False
        import qt

        caption = f"Unpacked DAP Atlas models ({model})"
        folder = qt.QFileDialog.getExistingDirectory(slicer.util.mainWindow(), caption)
        if not folder:
            return False
        self.logic.useDownloadedWeights(model, folder)
        return True

    def onApply(self) -> None:
        if self._applyJob is not None or not self._installRequirements(self.logic.postprocessRequirements()):
            return
        with slicer.util.tryWithErrorDisplay("DAP Atlas post-processing could not start.", waitCursor=True):
            p = self._parameterNode
            # main thread: read the nodes; the rules and statistics run in the job runner
            steps = self.selectedSteps()
            self._applyInputs = self.logic.readApplyInputs(
                p.inputVolume, p.modelOutput, sex=p.sex, steps=steps, force=p.forceNonCT
            )
            self._startApplyJob(self.logic.startApply(self._applyInputs, steps=steps), self._finishApply)

    def _startApplyJob(self, job, finish) -> None:
        self._applyJob, self._applyFinish = job, finish
        self._setApplyRunning(True)
        self._applyTimer.start()

    def _setApplyRunning(self, running: bool) -> None:
        self.ui.applyButton.enabled = not running
        self.ui.cancelApplyButton.enabled = running
        self.ui.applyProgressBar.visible = running
        if running:
            self.ui.applyProgressBar.value = 0

    def onCancelApply(self) -> None:
        if self._applyJob is not None:
            self._applyJob.cancel()  # returns at once; the step in progress finishes in the background
            self.ui.statusLabel.text = "Cancelling after the current step ..."

    def onPollApply(self) -> None:
        if self._applyJob is None:
            self._applyTimer.stop()
            return
        update = self._applyJob.poll()
        self.ui.applyProgressBar.value = round(100 * update.fraction)
        self.ui.applyProgressBar.format = f"%p%  {update.message}"
        if not update.ended:
            return
        self._applyTimer.stop()
        inputs, finish = self._applyInputs, self._applyFinish
        self._applyInputs, self._applyJob, self._applyFinish = None, None, None
        self._setApplyRunning(False)
        if update.state == "cancelled":
            self.ui.statusLabel.text = "Cancelled; nothing was added to the scene."
            return
        finish(inputs, update)

    @staticmethod
    def _raiseUnlessSucceeded(update, what: str) -> None:
        if update.state != "succeeded":
            if update.failure is not None:
                logging.error("DAP Atlas %s failed:\n%s", what, update.failure.traceback)
            raise RuntimeError(update.error or f"The {what} ended as {update.state}.")

    def _finishApply(self, inputs, update) -> None:
        """Main thread: attach the prepared result (no voxel work here)."""
        with slicer.util.tryWithErrorDisplay("DAP Atlas post-processing failed."):
            self._raiseUnlessSucceeded(update, "post-processing")
            result = self.logic.importApplyResult(inputs, update.result)
            self._lastResult = result
            p = self._parameterNode
            p.outputSegmentation = result["segmentationNode"]
            report = result["report"]
            self.ui.reportTextEdit.plainText = report.to_text()
            self.ui.statusLabel.text = (
                f"{report.changed_voxels} voxels changed in {report.seconds:.1f} s; "
                f"result: {result['segmentationNode'].GetName()}."
            )
            self.updateSystemList()
            self.logic.showResults(result["segmentationNode"], result["tableNode"], result["chartNode"])

    def onShowStatistics(self) -> None:
        if self._applyJob is not None or not self._installRequirements(self.logic.postprocessRequirements()):
            return
        with slicer.util.tryWithErrorDisplay("Could not compute the statistics.", waitCursor=True):
            p = self._parameterNode
            segmentationNode = p.outputSegmentation or p.modelOutput
            if segmentationNode is None or p.inputVolume is None:
                raise ValueError("Select the CT volume and a DAP segmentation (or run Apply) first.")
            # main thread: read the nodes; the statistics run in the job runner
            self._applyInputs = self.logic.readStatisticsInputs(p.inputVolume, segmentationNode)
            self._startApplyJob(self.logic.startStatistics(self._applyInputs), self._finishStatistics)

    def _finishStatistics(self, inputs, update) -> None:
        with slicer.util.tryWithErrorDisplay("Could not compute the statistics."):
            self._raiseUnlessSucceeded(update, "statistics")
            tableNode, chartNode = self.logic.importStatistics(inputs, update.result)
            self.logic.showResults(None, tableNode, chartNode)

    def onSegmentModelChanged(self, _index=None) -> None:
        if self._parameterNode:  # V1's raw output needs the rules, V2's does not
            model = self.ui.segmentModelComboBox.currentText
            self._parameterNode.postprocessAfterSegment = model == "dap-atlas-v1"

    def _setSegmentRunning(self, running: bool) -> None:
        self.ui.segmentButton.enabled = not running
        self.ui.cancelSegmentButton.enabled = running
        self.ui.segmentProgressBar.visible = running
        if running:
            self.ui.segmentProgressBar.value = 0

    def onSegment(self) -> None:
        p = self._parameterNode
        if p.segmentVolume is None:
            slicer.util.warningDisplay("Select the CT volume to segment first.")
            return
        # dialogs first (install, weights), without a wait cursor
        if not self._installRequirements(self.logic.inferenceRequirements()):
            return
        with slicer.util.tryWithErrorDisplay("Could not use the DAP Atlas weights."):
            if not self._confirmWeights(p.segmentModel):
                return
        with slicer.util.tryWithErrorDisplay("Could not start the DAP Atlas segmentation.", waitCursor=True):
            # writing the CT and starting the process: in the job runner; the poll picks up the process
            self._startJob = self.logic.startSegmentation(
                p.segmentVolume, p.segmentModel, p.segmentDevice, force=p.forceNonCT
            )
            self._segmentCtNode = p.segmentVolume
            self._setSegmentRunning(True)
            self.ui.statusLabel.text = f"Segmenting {p.segmentVolume.GetName()} with {p.segmentModel} ..."
            self._segmentTimer.start()

    def onPollSegmentation(self) -> None:
        if self._startJob is not None:
            self._pollStart()
            return
        if self._importJob is not None:
            self._pollImport()
            return
        if self._segmentJob is None:
            self._segmentTimer.stop()
            return
        update = self._segmentJob.poll()  # what happened since the last tick; never blocks
        self.ui.segmentProgressBar.value = round(100 * update.fraction)
        self.ui.segmentProgressBar.format = f"%p%  {update.message}"
        if not update.ended:
            return
        job, self._segmentJob = self._segmentJob, None
        if update.state == "succeeded":
            # reading the label map and building 142 segments: in the job runner, not here
            self._importJob = self.logic.startImportModelOutput(job)
            self.ui.statusLabel.text = "Importing the model output ..."
            return
        self._segmentTimer.stop()
        self._setSegmentRunning(False)
        threading.Thread(target=job.cleanup, name="DAP Atlas cleanup", daemon=True).start()
        with slicer.util.tryWithErrorDisplay("DAP Atlas segmentation failed."):
            self._raiseUnlessSucceeded(update, "segmentation")

    def _pollStart(self) -> None:
        update = self._startJob.poll()
        self.ui.segmentProgressBar.format = f"%p%  {update.message}"
        if not update.ended:
            return
        self._startJob = None
        if update.state == "succeeded":
            self._segmentJob = update.result  # the running model process; polled from the next tick
            return
        self._segmentTimer.stop()
        self._setSegmentRunning(False)
        with slicer.util.tryWithErrorDisplay("Could not start the DAP Atlas segmentation."):
            self._raiseUnlessSucceeded(update, "segmentation start")

    def _pollImport(self) -> None:
        update = self._importJob.poll()
        if not update.ended:
            return
        self._segmentTimer.stop()
        ctNode, self._importJob = self._segmentCtNode, None
        self._setSegmentRunning(False)
        if update.state == "cancelled":
            self.ui.statusLabel.text = "Segmentation cancelled; nothing was added to the scene."
            return
        with slicer.util.tryWithErrorDisplay("DAP Atlas segmentation failed."):
            self._raiseUnlessSucceeded(update, "model output import")
            p = self._parameterNode
            name = f"{ctNode.GetName()} {p.segmentModel}"
            p.modelOutput = self.logic.attachModelOutput(ctNode, update.result, name)
            p.inputVolume = ctNode
            self.ui.statusLabel.text = f"Segmented {ctNode.GetName()}: model output {name}."
            if p.postprocessAfterSegment:  # the rules and import of the Post-processing section
                self.onApply()

    def onCancelSegment(self, _checked=None, wait: bool = False) -> None:
        if self._importJob is not None:
            self._importJob.cancel()  # cooperative; the poll reports the end
            return
        if self._startJob is not None:
            self._segmentTimer.stop()
            startJob, self._startJob = self._startJob, None
            startJob.cancel()
            # a process that started before the cancel request was seen is killed off the main thread
            helper = threading.Thread(target=_cancelStartedProcess, args=(startJob,), daemon=True)
            helper.start()
            if wait:
                helper.join()
            self._setSegmentRunning(False)
            self.ui.statusLabel.text = "Segmentation cancelled; nothing was added to the scene."
            return
        if self._segmentJob is None:
            return
        self._segmentTimer.stop()
        job, self._segmentJob = self._segmentJob, None
        # kills the process tree (up to seconds for a busy child) and deletes its folder: off the main
        # thread, so the button returns at once; the widget never touches this job again
        if wait:
            job.cancel()
        else:
            threading.Thread(target=job.cancel, name="DAP Atlas cancel", daemon=True).start()
        self._setSegmentRunning(False)
        self.ui.statusLabel.text = "Segmentation cancelled; nothing was added to the scene."

    def updateSystemList(self, node=None) -> None:
        """One checkable row per anatomical system of the output segmentation."""
        import qt

        from AnatomyCommonLib.anatomy.label_schema import SYSTEM_TITLES
        from DAPAtlasLib.mrml_nodes import segment_ids_by_system, system_visibility

        widget = self.ui.systemsListWidget
        widget.blockSignals(True)
        widget.clear()
        # The selector, not the parameter node: this slot runs before the parameter node
        # connector has copied a user's new choice from the selector.
        segmentationNode = self.ui.outputSegmentationSelector.currentNode()
        if segmentationNode is not None:
            visible = system_visibility(segmentationNode)
            for system, ids in segment_ids_by_system(segmentationNode).items():
                item = qt.QListWidgetItem(f"{SYSTEM_TITLES.get(system, system)} ({len(ids)})")
                item.setData(qt.Qt.UserRole, system)
                item.setFlags(item.flags() | qt.Qt.ItemIsUserCheckable)
                item.setCheckState(qt.Qt.Checked if visible.get(system, True) else qt.Qt.Unchecked)
                widget.addItem(item)
        widget.blockSignals(False)

    def onSystemToggled(self, item) -> None:
        import qt

        from DAPAtlasLib.mrml_nodes import set_system_visibility

        segmentationNode = self._parameterNode.outputSegmentation
        if segmentationNode is not None:
            set_system_visibility(
                segmentationNode, item.data(qt.Qt.UserRole), item.checkState() == qt.Qt.Checked
            )


class DAPAtlasModuleLogic(ScriptedLoadableModuleLogic):
    """Console-friendly entry points; all computation is in DAPAtlasLib."""

    def getParameterNode(self):
        return DAPAtlasModuleParameterNode(super().getParameterNode())

    @staticmethod
    def postprocessRequirements():
        """(requirements, requester, needs torch) of the rules and statistics; the widget installs them."""
        from AnatomyCommonLib.dependencies import read_requirements

        resource = os.path.join(os.path.dirname(__file__), "Resources", "requirements-postprocess.txt")
        return read_requirements(resource), "DAP Atlas post-processing", False

    @staticmethod
    def inferenceRequirements():
        """(requirements, requester, needs torch) of the segmentation models; the widget installs them."""
        from AnatomyCommonLib.dependencies import read_requirements

        resource = os.path.join(os.path.dirname(__file__), "Resources", "requirements-inference.txt")
        return read_requirements(resource), "DAP Atlas segmentation", True

    @staticmethod
    def checkRequirements(requirements) -> None:
        """Raise MissingDependencyError naming what is missing (no dialog: the widget asks and installs)."""
        from AnatomyCommonLib.dependencies import check_requirements

        names, requester, needTorch = requirements
        check_requirements(names, requester, need_torch=needTorch)

    def loadPhantom(self, size: str = "tiny", sex: str = "M", seed: int = 0):
        """Generate the synthetic whole-body CT and load it as a volume plus a DAP segmentation."""
        from AnatomyCommonLib import slicer_bridge
        from AnatomyCommonLib.anatomy.phantom import make_phantom
        from DAPAtlasLib.mrml_nodes import create_dap_segmentation

        phantom = make_phantom(size, seed=seed, sex=sex)
        volumeNode = slicer_bridge.volume_to_node(phantom.ct, f"Phantom CT ({size}, {sex})")
        segmentationNode = create_dap_segmentation(
            phantom.labels, name=f"Phantom DAP labels ({size}, {sex})", reference_volume_node=volumeNode
        )
        slicer.util.setSliceViewerLayers(background=volumeNode, fit=True)
        logging.info("Phantom loaded: %s voxels", phantom.ct.shape)
        return volumeNode, segmentationNode

    def loadTerminologyAndColors(self):
        """Load the DAP terminology (.term.json) and colour table (.ctbl); returns the colour node."""
        from DAPAtlasLib.mrml_nodes import load_color_table_node, load_terminology

        load_terminology(slicer.modules.terminologies.logic())
        existing = slicer.mrmlScene.GetFirstNodeByName("DAP Atlas colors")
        return existing or load_color_table_node()

    def postprocessNodes(
        self, ctNode, modelOutputNode, sex: str = "auto", steps=None, outputName=None, force=False
    ) -> dict:
        """Apply the anatomical rules to a DAP model output (console; the widget runs the same halves).

        The result replaces the previous post-processed result of the same model output.

        ``modelOutputNode`` is a label-map volume or a segmentation; ``sex`` is "auto" (DICOM
        PatientSex of the CT's patient, else unknown), "M" or "F"; ``steps`` the step names
        (default all). A CT that does not look like a CT in HU is refused before the skull rule
        reads it (``ImplausibleCTError``) unless ``force``. Returns a dict with segmentationNode,
        report, tableNode, chartNode and inputWarnings.
        """
        inputs = self.readApplyInputs(ctNode, modelOutputNode, sex=sex, steps=steps, force=force)
        update = self.startApply(inputs, steps).wait()  # console: waits (the widget polls instead)
        if update.state != "succeeded":
            raise RuntimeError(update.error or f"The post-processing ended as {update.state}.")
        return self.importApplyResult(inputs, update.result, outputName=outputName)

    def readApplyInputs(self, ctNode, modelOutputNode, sex: str = "auto", steps=None, force=False) -> dict:
        """Main thread: what Apply reads from the nodes (MRML only; the voxels are copied by the job)."""
        self.checkRequirements(self.postprocessRequirements())
        from AnatomyCommonLib import slicer_bridge
        from DAPAtlasLib import mrml_nodes
        from DAPAtlasLib.postprocess import validate_steps

        dicomSex = mrml_nodes.patient_sex_of_node(ctNode)
        checkCt = (
            {"name": ctNode.GetName(), "force": force} if "skull_from_ct" in validate_steps(steps) else None
        )
        return {
            "ctNode": ctNode,
            "modelOutputNode": modelOutputNode,
            "ct": slicer_bridge.volume_snapshot(ctNode),
            "labels": mrml_nodes.dap_labels_reader(modelOutputNode, ctNode),
            "sex": sex,
            "metadata": {"PatientSex": dicomSex} if dicomSex else {},
            "checkCt": checkCt,  # the CT check reads every voxel: in the job, before the rules
            "force": bool(force),
        }

    def submit(self, function, description: str):
        """Run ``function(job)`` in the module's job runner (one worker thread); returns the job."""
        from AnatomyCommonLib.background_jobs import JobWorker

        if getattr(self, "_worker", None) is None:
            self._worker = JobWorker("DAP Atlas background work")
        return self._worker.submit(function, description)

    def startApply(self, inputs: dict, steps=None):
        """Run the rules, statistics and segment building in the job runner; returns the job (poll it)."""
        return self.submit(
            lambda job: self._applyComputation(inputs, steps, job), "DAP Atlas post-processing"
        )

    @staticmethod
    def _applyComputation(inputs: dict, steps, job):
        from DAPAtlasLib.mrml_nodes import apply_in_background

        job.report_progress(0.0, "reading the CT and the model output")
        return apply_in_background(
            inputs["labels"].read(),
            inputs["ct"].to_volume(),
            sex=inputs["sex"],
            steps=steps,
            metadata=inputs["metadata"],
            job=job,
            check_ct=inputs["checkCt"],
            force=inputs.get("force", False),
        )

    def importApplyResult(self, inputs: dict, computation, outputName=None) -> dict:
        """Main thread: the computed labels and statistics as nodes, replacing the previous result."""
        from DAPAtlasLib import mrml_nodes

        modelOutputNode = inputs["modelOutputNode"]
        self.loadTerminologyAndColors()
        name = outputName or f"{modelOutputNode.GetName()} post-processed"
        key = f"DAP post-processed|{modelOutputNode.GetID()}"  # applying again refills the same nodes
        segmentationNode = mrml_nodes.attach_dap_segments(
            computation.segments, name, reference_volume_node=inputs["ctNode"], key=key
        )
        tableNode, chartNode = mrml_nodes.statistics_result_nodes(computation.statistics, name, key=key)
        return {
            "segmentationNode": segmentationNode,
            "report": computation.result.report,
            "tableNode": tableNode,
            "chartNode": chartNode,
            "inputWarnings": list(computation.input_warnings),
        }

    @staticmethod
    def checkWeights(model: str = "dap-atlas-v2") -> None:
        """Raise MissingWeightsError (its message says how to install) unless ``model`` can run.

        ``model`` is a registered name or a model folder. The widget turns the error into a question.
        """
        from DAPAtlasLib.exceptions import MissingWeightsError
        from DAPAtlasLib.model_weights import install_hint, weights_manager

        manager = weights_manager()
        if not (os.path.isdir(model) or manager.is_installed(model)):
            raise MissingWeightsError(install_hint(model, manager))

    @staticmethod
    def useDownloadedWeights(model: str, folder: str):
        """Use the authors' unpacked download in ``folder`` (in place) as ``model``'s weights."""
        from DAPAtlasLib.model_weights import use_downloaded_folder

        return use_downloaded_folder(model, folder)

    def startSegmentation(
        self, ctNode, model: str = "dap-atlas-v2", device: str = "auto", folds=None, force: bool = False
    ):
        """Start the model on ``ctNode``: the CT is read here, written and the model process started in
        the job runner. Returns that ThreadJob; its result is the running ProcessJob (poll it).
        ``force`` segments an input that does not look like a CT (``--force``)."""
        from AnatomyCommonLib import slicer_bridge
        from DAPAtlasLib.segmentation_job import start_segmentation_in_background

        ct = slicer_bridge.volume_snapshot(ctNode)  # copied, written and handed to the process in the job
        return self.submit(
            lambda job: start_segmentation_in_background(
                ct.to_volume(), model, device=device, folds=folds, postprocess=False, force=force, job=job
            ),
            "DAP Atlas segmentation start",
        )

    def startImportModelOutput(self, segmentJob):
        """Read a finished model output and build its segments in the job runner; returns the job.

        The segmentation job's folder is deleted there too, after reading.
        """
        from DAPAtlasLib.mrml_nodes import model_output_in_background

        def work(job):
            try:
                return model_output_in_background(segmentJob.expected_result, job=job)
            finally:
                segmentJob.cleanup()

        return self.submit(work, "DAP Atlas model output import")

    def attachModelOutput(self, ctNode, prepared, name: str):
        """Main thread: prepared model-output segments as a new DAP segmentation on the CT."""
        from DAPAtlasLib import mrml_nodes

        self.loadTerminologyAndColors()
        return mrml_nodes.attach_dap_segments(prepared, name, reference_volume_node=ctNode)

    def importModelOutput(self, ctNode, labelsPath, name: str):
        """A finished model output (label map file) as a new DAP segmentation on the CT (console; waits)."""
        from DAPAtlasLib.mrml_nodes import model_output_in_background

        return self.attachModelOutput(ctNode, model_output_in_background(labelsPath), name)

    def segmentCT(
        self, ctNode, model="dap-atlas-v2", device="auto", folds=None, postprocess=None, sex="auto"
    ):
        """Console: segment ``ctNode`` (waits); with post-processing (default for V1) the rules run too.

        Returns the DAP segmentation node (the post-processed one when post-processing ran).
        """
        self.checkRequirements(self.inferenceRequirements())
        self.checkWeights(model)
        started = self.startSegmentation(ctNode, model, device, folds).wait()
        if started.state != "succeeded":
            raise RuntimeError(started.error or f"The segmentation ended as {started.state}.")
        job = started.result
        try:
            update = job.wait()
            if update.state != "succeeded":
                raise RuntimeError(update.error or f"The segmentation ended as {update.state}.")
            node = self.importModelOutput(ctNode, update.result_path, f"{ctNode.GetName()} {model}")
        finally:
            job.cleanup()
        if postprocess if postprocess is not None else model == "dap-atlas-v1":
            return self.postprocessNodes(ctNode, node, sex=sex)["segmentationNode"]
        return node

    def statisticsNodes(self, ctNode, segmentationNode):
        """Statistics table and volume-by-system chart of a DAP segmentation on the CT's grid (console)."""
        inputs = self.readStatisticsInputs(ctNode, segmentationNode)
        update = self.startStatistics(inputs).wait()
        if update.state != "succeeded":
            raise RuntimeError(update.error or f"The statistics ended as {update.state}.")
        return self.importStatistics(inputs, update.result)

    def readStatisticsInputs(self, ctNode, segmentationNode) -> dict:
        """Main thread: the DAP labels and the CT read from the nodes."""
        self.checkRequirements(self.postprocessRequirements())
        from AnatomyCommonLib import slicer_bridge
        from DAPAtlasLib import mrml_nodes

        return {  # plans only: the job copies the voxels
            "labels": mrml_nodes.dap_labels_reader(segmentationNode, ctNode),
            "ct": slicer_bridge.volume_snapshot(ctNode),
            "name": segmentationNode.GetName(),
            "key": f"DAP statistics|{segmentationNode.GetID()}",
        }

    def startStatistics(self, inputs: dict):
        """The statistics in the job runner; returns the job (its result: the statistics list)."""
        from DAPAtlasLib.mrml_nodes import statistics_in_background

        return self.submit(
            lambda job: statistics_in_background(inputs["labels"].read(), inputs["ct"].to_volume(), job=job),
            "DAP Atlas statistics",
        )

    @staticmethod
    def importStatistics(inputs: dict, statistics):
        """Main thread: computed statistics as the table and chart nodes (refilled per input)."""
        from DAPAtlasLib import mrml_nodes

        return mrml_nodes.statistics_result_nodes(statistics, inputs["name"], key=inputs["key"])

    @staticmethod
    def showResults(segmentationNode, tableNode, chartNode) -> None:
        """Show the segmentation in the views and the table and chart in a table+plot layout."""
        if segmentationNode is not None:
            segmentationNode.CreateDefaultDisplayNodes()
        layoutManager = slicer.app.layoutManager()
        if layoutManager is None:
            return
        layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutFourUpPlotTableView)
        selection = slicer.app.applicationLogic().GetSelectionNode()
        selection.SetActiveTableID(tableNode.GetID())
        selection.SetActivePlotChartID(chartNode.GetID())
        slicer.app.applicationLogic().PropagateTableSelection()
        slicer.app.applicationLogic().PropagatePlotChartSelection()


class DAPAtlasModuleTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer (Developer mode > Reload and Test)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        from AnatomyCommonLib.dependencies import skip_reason

        names, requester, needTorch = DAPAtlasModuleLogic.postprocessRequirements()
        reason = skip_reason(names, requester, need_torch=needTorch)
        if reason:  # self-tests never install packages
            self.skipTest(reason)
        self.setUp()
        self.test_phantom_loads_with_dap_names()
        self.setUp()
        self.test_postprocessing_turns_gonads_in_the_orbit_into_eyeballs()

    def test_phantom_loads_with_dap_names(self):
        self.delayDisplay("Loading the tiny phantom")
        _, segmentationNode = DAPAtlasModuleLogic().loadPhantom("tiny", "F")
        segmentation = segmentationNode.GetSegmentation()
        names = {segmentation.GetNthSegment(n).GetName() for n in range(segmentation.GetNumberOfSegments())}
        self.assertIn("Kidney Left", names)
        self.assertIn("Uterus", names)
        self.assertNotIn("Prostate", names)
        self.delayDisplay("Test passed")

    def test_postprocessing_turns_gonads_in_the_orbit_into_eyeballs(self):
        from AnatomyCommonLib import slicer_bridge
        from AnatomyCommonLib.anatomy.phantom import make_phantom
        from DAPAtlasLib.simulated_model_errors import inject_model_errors

        self.delayDisplay("Post-processing a phantom with gonads in the orbits")
        phantom = make_phantom("tiny", sex="M")
        corrupted = inject_model_errors(phantom.labels, ["gonads_in_orbit"], sex="M")
        ctNode = slicer_bridge.volume_to_node(phantom.ct, "CT")
        labelNode = slicer_bridge.volume_to_node(corrupted.labels, "model output", labelmap=True)
        result = DAPAtlasModuleLogic().postprocessNodes(ctNode, labelNode, sex="M")
        segmentation = result["segmentationNode"].GetSegmentation()
        names = {segmentation.GetNthSegment(n).GetName() for n in range(segmentation.GetNumberOfSegments())}
        self.assertIn("Eyeball Left", names)
        self.assertIn("Eyeball Right", names)
        self.assertGreater(result["report"].step("body_part_limits").changed_voxels, 0)
        self.assertGreater(result["tableNode"].GetNumberOfRows(), 100)
        self.delayDisplay("Test passed")
