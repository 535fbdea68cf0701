"""DAP Atlas: whole-body CT -> 142 anatomical structures, anatomical-rule repair, statistics.

This file is the thin Slicer layer (widget <-> parameter node <-> DAPAtlasLib). Every
algorithm lives in DAPAtlasLib and runs without Slicer; MRML conversions go through
AnatomyCommonLib.slicer_bridge and DAPAtlasLib.mrml_nodes.
"""

import logging
import os
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
        self.parent.contributors = ["Slicer Anatomy Toolkit developers"]
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
        self._applyJob = None  # the running post-processing (a ThreadJob of the logic's worker)
        self._applyInputs = None

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
            self._applyJob = self.logic.startApply(self._applyInputs, steps=steps)
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
            self._applyJob.cancel()  # returns at once; the rule in progress finishes in the background
            self.ui.statusLabel.text = "Cancelling after the current rule ..."

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
        inputs, self._applyInputs, self._applyJob = self._applyInputs, None, None
        self._setApplyRunning(False)
        if update.state == "cancelled":
            self.ui.statusLabel.text = "Post-processing cancelled; nothing was added to the scene."
            return
        with slicer.util.tryWithErrorDisplay("DAP Atlas post-processing failed.", waitCursor=True):
            if update.state != "succeeded":
                if update.failure is not None:
                    logging.error("DAP Atlas post-processing failed:\n%s", update.failure.traceback)
                raise RuntimeError(update.error or f"The post-processing ended as {update.state}.")
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
        if not self._installRequirements(self.logic.postprocessRequirements()):
            return
        with slicer.util.tryWithErrorDisplay("Could not compute the statistics.", waitCursor=True):
            p = self._parameterNode
            segmentationNode = p.outputSegmentation or p.modelOutput
            if segmentationNode is None or p.inputVolume is None:
                raise ValueError("Select the CT volume and a DAP segmentation (or run Apply) first.")
            tableNode, chartNode = self.logic.statisticsNodes(p.inputVolume, segmentationNode)
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
            self._segmentJob = self.logic.startSegmentation(
                p.segmentVolume, p.segmentModel, p.segmentDevice, force=p.forceNonCT
            )
            self._segmentCtNode = p.segmentVolume
            self._setSegmentRunning(True)
            self.ui.statusLabel.text = f"Segmenting {p.segmentVolume.GetName()} with {p.segmentModel} ..."
            self._segmentTimer.start()

    def onPollSegmentation(self) -> None:
        if self._segmentJob is None:
            self._segmentTimer.stop()
            return
        update = self._segmentJob.poll()  # what happened since the last tick; never blocks
        self.ui.segmentProgressBar.value = round(100 * update.fraction)
        self.ui.segmentProgressBar.format = f"%p%  {update.message}"
        if not update.ended:
            return
        self._segmentTimer.stop()
        job, ctNode, self._segmentJob = self._segmentJob, self._segmentCtNode, None
        self._setSegmentRunning(False)
        with slicer.util.tryWithErrorDisplay("DAP Atlas segmentation failed.", waitCursor=True):
            try:
                if update.state != "succeeded":
                    if update.failure is not None:
                        logging.error("DAP Atlas segmentation failed:\n%s", update.failure.traceback)
                    raise RuntimeError(update.error or f"The segmentation ended as {update.state}.")
                p = self._parameterNode
                name = f"{ctNode.GetName()} {p.segmentModel}"
                p.modelOutput = self.logic.importModelOutput(ctNode, update.result_path, name)
            finally:
                job.cleanup()
            p.inputVolume = ctNode
            self.ui.statusLabel.text = f"Segmented {ctNode.GetName()}: model output {name}."
            if p.postprocessAfterSegment:  # the rules and import of the Post-processing section
                self.onApply()

    def onCancelSegment(self, _checked=None, wait: bool = False) -> None:
        if self._segmentJob is None:
            return
        self._segmentTimer.stop()
        job, self._segmentJob = self._segmentJob, None
        # kills the process tree (up to seconds for a busy child) and deletes its folder: off the main
        # thread, so the button returns at once; the widget never touches this job again
        if wait:
            job.cancel()
        else:
            import threading

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
        """Main thread: the CT, the DAP labels and the DICOM sex read from the nodes (MRML only)."""
        self.checkRequirements(self.postprocessRequirements())
        from AnatomyCommonLib import slicer_bridge
        from DAPAtlasLib import mrml_nodes
        from DAPAtlasLib.input_checks import check_ct
        from DAPAtlasLib.postprocess import validate_steps

        ct = slicer_bridge.node_to_volume(ctNode)
        inputWarnings = []
        if "skull_from_ct" in validate_steps(steps):
            inputWarnings = check_ct(ct, name=ctNode.GetName(), force=force)
        dicomSex = mrml_nodes.patient_sex_of_node(ctNode)
        return {
            "ctNode": ctNode,
            "modelOutputNode": modelOutputNode,
            "ct": ct,
            "labels": mrml_nodes.dap_labels_from_node(modelOutputNode, ctNode),
            "sex": sex,
            "metadata": {"PatientSex": dicomSex} if dicomSex else {},
            "inputWarnings": inputWarnings,
            "force": bool(force),
        }

    def startApply(self, inputs: dict, steps=None):
        """Run the rules and statistics in the module's job runner; returns the job (poll it)."""
        from AnatomyCommonLib.background_jobs import JobWorker

        if getattr(self, "_worker", None) is None:
            self._worker = JobWorker("DAP Atlas post-processing")
        return self._worker.submit(
            lambda job: self._applyComputation(inputs, steps, job), "DAP Atlas post-processing"
        )

    @staticmethod
    def _applyComputation(inputs: dict, steps, job):
        from DAPAtlasLib.mrml_nodes import apply_in_background

        return apply_in_background(
            inputs["labels"],
            inputs["ct"],
            sex=inputs["sex"],
            steps=steps,
            metadata=inputs["metadata"],
            job=job,
            force=inputs.get("force", False),
        )

    def importApplyResult(self, inputs: dict, computation, outputName=None) -> dict:
        """Main thread: the computed labels and statistics as nodes, replacing the previous result."""
        from DAPAtlasLib import mrml_nodes

        modelOutputNode = inputs["modelOutputNode"]
        self.loadTerminologyAndColors()
        name = outputName or f"{modelOutputNode.GetName()} post-processed"
        key = f"DAP post-processed|{modelOutputNode.GetID()}"  # applying again refills the same nodes
        segmentationNode = mrml_nodes.create_dap_segmentation(
            computation.result.labels, name, reference_volume_node=inputs["ctNode"], key=key
        )
        tableNode, chartNode = mrml_nodes.statistics_result_nodes(computation.statistics, name, key=key)
        return {
            "segmentationNode": segmentationNode,
            "report": computation.result.report,
            "tableNode": tableNode,
            "chartNode": chartNode,
            "inputWarnings": inputs["inputWarnings"],
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
        """Start the model on ``ctNode`` in a background process; returns the job (poll() it).

        ``force`` segments an input that does not look like a CT (``--force``)."""
        from AnatomyCommonLib import slicer_bridge
        from DAPAtlasLib.segmentation_job import start_segmentation_job

        ct = slicer_bridge.node_to_volume(ctNode)
        return start_segmentation_job(ct, model, device=device, folds=folds, postprocess=False, force=force)

    def importModelOutput(self, ctNode, labelsPath, name: str):
        """A finished model output (label map file) as a new DAP segmentation on the CT."""
        from AnatomyCommonLib.image_io import read_labelmap
        from DAPAtlasLib import mrml_nodes

        labels = read_labelmap(labelsPath, name="DAP Atlas model output")
        self.loadTerminologyAndColors()
        return mrml_nodes.create_dap_segmentation(labels, name, reference_volume_node=ctNode)

    def segmentCT(
        self, ctNode, model="dap-atlas-v2", device="auto", folds=None, postprocess=None, sex="auto"
    ):
        """Console: segment ``ctNode`` (waits); with post-processing (default for V1) the rules run too.

        Returns the DAP segmentation node (the post-processed one when post-processing ran).
        """
        self.checkRequirements(self.inferenceRequirements())
        self.checkWeights(model)
        job = self.startSegmentation(ctNode, model, device, folds)
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
        """Statistics table and volume-by-system chart of a DAP segmentation on the CT's grid."""
        self.checkRequirements(self.postprocessRequirements())
        from AnatomyCommonLib import slicer_bridge
        from DAPAtlasLib import mrml_nodes

        labels = mrml_nodes.dap_labels_from_node(segmentationNode, ctNode)
        return mrml_nodes.statistics_nodes(
            labels,
            slicer_bridge.node_to_volume(ctNode),
            segmentationNode.GetName(),
            key=f"DAP statistics|{segmentationNode.GetID()}",
        )

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
