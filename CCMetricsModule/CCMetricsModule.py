"""CC-Metrics: per-connected-component evaluation of predictions against a reference.

This file is the thin Slicer layer (widget <-> parameter node <-> CCMetricsLib). The Voronoi
partition and every metric live in CCMetricsLib and run without Slicer;
CCMetricsLib.mrml_nodes moves data between MRML nodes and the library.
"""

import os
from typing import Annotated, Union

import slicer
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

METRIC_CHECKBOXES = {
    "dice": "useDice",
    "iou": "useIou",
    "nsd": "useNsd",
    "hd95": "useHd95",
    "hd": "useHd",
    "assd": "useAssd",
}


class CCMetricsModule(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "CC-Metrics"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = ["AnatomyCommon"]
        self.parent.contributors = ["Slicer Anatomy Toolkit contributors (slicer-anatomy-toolkit on GitHub)"]
        self.parent.helpText = (
            "Per-connected-component metrics (Dice, IoU, normalized surface Dice, HD, HD95, ASSD in mm) "
            "computed in the generalized Voronoi region of each reference component, next to the standard "
            "global metrics, Panoptic Quality and Lesion Dice, with the regions shown in the slice views."
        )
        self.parent.acknowledgementText = (
            "CC-Metrics: Jaus et al., 'Every Component Counts: Rethinking the Measure of Success for "
            "Medical Semantic Segmentation in Multi-Instance Segmentation Tasks', AAAI 2025."
        )


@parameterNodeWrapper
class CCMetricsModuleParameterNode:
    """GUI state, saved with the scene (the checked predictions live in the combo box).

    ``reference`` lists its node types: the qMRMLNodeComboBox connector instantiates each type to
    set the selector's nodeTypes (vtkMRMLNode is abstract), and a Union needs None for the
    default. The ranges are needed because the spin box connectors otherwise replace the .ui
    ranges with unbounded ones (and the "0 = any / infinite" special value texts need minimum 0).
    """

    reference: Union[slicer.vtkMRMLSegmentationNode, slicer.vtkMRMLLabelMapVolumeNode, None]  # noqa: UP007
    gridVolume: slicer.vtkMRMLScalarVolumeNode
    labelValue: Annotated[int, WithinRange(0, 65535)] = 0
    useDice: bool = True
    useIou: bool = True
    useNsd: bool = True
    useHd95: bool = True
    useHd: bool = True
    useAssd: bool = True
    nsdToleranceMm: Annotated[float, WithinRange(0.0, 100.0)] = 1.0
    distanceWorstMm: Annotated[float, WithinRange(0.0, 10000.0)] = 0.0
    showRegions: bool = False  # the full region map is a whole-grid computation: on request only
    regionsOutline: bool = True


class CCMetricsModuleWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Widget <-> parameter node; actions call CCMetricsModuleLogic."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CCMetricsModule.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = CCMetricsModuleLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.referenceSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onReferenceChanged)
        self.ui.predictionsSelector.connect("checkedNodesChanged()", self.updateComputeButton)
        self.ui.computeButton.connect("clicked(bool)", self.onCompute)
        self.ui.cancelComputeButton.connect("clicked(bool)", self.onCancelCompute)
        self.ui.componentsTableView.connect("selectionChanged()", self.onComponentSelected)
        self.ui.showRegionsCheckBox.connect("toggled(bool)", self.onRegionsDisplayChanged)
        self.ui.regionsOutlineCheckBox.connect("toggled(bool)", self.onRegionsDisplayChanged)
        self.ui.exportCsvButton.connect("clicked(bool)", self.onExportCsv)
        self.ui.exportJsonButton.connect("clicked(bool)", self.onExportJson)
        self.setupMultiRaterSection()
        import qt

        self._regionsJob = None  # the region map being computed in the background
        self._regionsTimer = qt.QTimer()
        self._regionsTimer.setInterval(200)
        self._regionsTimer.connect("timeout()", self.onPollRegions)
        self._computeJob = None  # the metrics or the agreement being computed in the background
        self._computeEnded = None  # what shows that job's result on the main thread
        self._computeTimer = qt.QTimer()
        self._computeTimer.setInterval(100)
        self._computeTimer.connect("timeout()", self.onPollCompute)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        for job in (self._regionsJob, self._computeJob):
            if job is not None:
                job.cancel()
        self._regionsTimer.stop()
        self._computeTimer.stop()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event) -> None:
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, inputParameterNode) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
        self.onReferenceChanged(self.ui.referenceSelector.currentNode())

    # ------------------------------------------------------------------ callbacks
    def onReferenceChanged(self, node) -> None:
        isSegmentation = node is not None and node.IsA("vtkMRMLSegmentationNode")
        self.ui.referenceSegmentSelector.setCurrentNode(node if isSegmentation else None)
        self.ui.referenceSegmentSelector.setEnabled(isSegmentation)
        self.updateComputeButton()

    def updateComputeButton(self) -> None:
        ready = self.ui.referenceSelector.currentNode() is not None and bool(
            self.ui.predictionsSelector.checkedNodes()
        )
        self.ui.computeButton.setEnabled(ready and getattr(self, "_computeJob", None) is None)

    def _installRequirements(self) -> bool:
        """Ask, then install what is missing (no wait cursor under the dialog); False if not installed."""
        from AnatomyCommonLib.dependencies import InstallDeclined, ensure_requirements

        try:
            with slicer.util.tryWithErrorDisplay("CC-Metrics: the Python packages could not be installed."):
                ensure_requirements(self.logic.requirements(), "CC-Metrics")
            return True
        except InstallDeclined as declined:
            self.ui.statusLabel.text = declined.message  # a choice, not an error
        except Exception:  # shown by tryWithErrorDisplay
            pass
        return False

    def onCompute(self) -> None:
        if self._computeJob is not None or not self._installRequirements():
            return
        with slicer.util.tryWithErrorDisplay("CC-Metrics could not read the inputs.", waitCursor=True):
            p = self._parameterNode
            metrics = [metric for metric, field in METRIC_CHECKBOXES.items() if getattr(p, field)]
            segmentId = None  # the (disabled) segment selector may still show a segmentation
            if p.reference is not None and p.reference.IsA("vtkMRMLSegmentationNode"):
                segmentId = self.ui.referenceSegmentSelector.currentSegmentID() or None
            # main thread: read the masks from the nodes; the metrics run in the job runner
            inputs = self.logic.readInputs(
                p.reference,
                list(self.ui.predictionsSelector.checkedNodes()),
                referenceSegmentId=segmentId,
                label=p.labelValue or None,
                gridNode=p.gridVolume,
            )
            job = self.logic.startCompute(
                inputs,
                metrics=metrics,
                nsdToleranceMm=p.nsdToleranceMm,
                distanceWorstMm=p.distanceWorstMm or None,
            )
            self._startForegroundJob(job, self._showComputed)

    def _startForegroundJob(self, job, onEnded) -> None:
        """Show ``job`` in the progress bar with Cancel; ``onEnded(update)`` runs when it ends.

        Compute and Compute agreement share the bar, Cancel and the one-job-at-a-time rule."""
        self._computeJob, self._computeEnded = job, onEnded
        self._setComputeRunning(True)
        self._computeTimer.start()

    def _setComputeRunning(self, running: bool) -> None:
        self.ui.cancelComputeButton.enabled = running
        self.ui.computeProgressBar.visible = running
        if running:
            self.ui.computeProgressBar.value = 0
        self.updateComputeButton()
        self.multiRaterButton.enabled = not running

    def onCancelCompute(self) -> None:
        if self._computeJob is not None:
            self._computeJob.cancel()  # returns at once; the current step finishes in the background
            if self._computeEnded == self._showAgreement:
                self.multiRaterStatus.text = "Cancelling after the current pair ..."
            else:
                self.ui.statusLabel.text = "Cancelling after the current prediction ..."

    def onPollCompute(self) -> None:
        if self._computeJob is None:
            self._computeTimer.stop()
            return
        update = self._computeJob.poll()
        self.ui.computeProgressBar.value = round(100 * update.fraction)
        self.ui.computeProgressBar.format = f"%p%  {update.message}"
        if not update.ended:
            return
        self._computeTimer.stop()
        onEnded, self._computeJob, self._computeEnded = self._computeEnded, None, None
        self._setComputeRunning(False)
        onEnded(update)

    def _showComputed(self, update) -> None:
        if update.state == "cancelled":
            self.ui.statusLabel.text = "CC-Metrics cancelled; the tables were not changed."
            return
        with slicer.util.tryWithErrorDisplay("CC-Metrics could not compute the metrics."):
            if update.state != "succeeded":
                raise RuntimeError(update.error or f"The metrics ended as {update.state}.")
            # main thread: only the prepared rows go into the table nodes
            result = self.logic.showComputed(
                update.result, regionsOutline=self.ui.regionsOutlineCheckBox.checked
            )
            self.ui.summaryTableView.setMRMLTableNode(result.summary_table)
            self.ui.componentsTableView.setMRMLTableNode(result.component_table)
            self.ui.exportCsvButton.setEnabled(True)
            self.ui.exportJsonButton.setEnabled(True)
            first = next(iter(result.comparison))
            self.ui.statusLabel.text = (
                f"{first.counts['n_reference_components']} reference components, "
                f"{len(result.comparison)} prediction(s) evaluated."
            )
        if self.ui.showRegionsCheckBox.checked:
            self.onRegionsDisplayChanged()  # the new result's regions, computed in the background

    def onComponentSelected(self) -> None:
        view = self.ui.componentsTableView
        tableNode = view.mrmlTableNode()
        rows = {index.row() for index in view.selectionModel().selectedIndexes()}
        if tableNode is None or len(rows) != 1:
            return
        # qMRMLTableModel shows the column names as an extra first row unless the table node uses
        # them as the column header (off by default): view row - that offset = table row.
        headerRows = view.model().rowCount() - tableNode.GetNumberOfRows()
        row = rows.pop() - headerRows
        if row >= 0:
            self.logic.centerViewsOnComponent(row)

    def onRegionsDisplayChanged(self, _checked=None) -> None:
        visible, outline = self.ui.showRegionsCheckBox.checked, self.ui.regionsOutlineCheckBox.checked
        with slicer.util.tryWithErrorDisplay("Could not show the Voronoi regions."):
            self.logic.setRegionsDisplay(visible, outline)
            if visible and self._regionsJob is None and self.logic.regionsMissing():
                # a whole-grid computation: in the background; the overlay appears when it is done
                self._regionsJob = self.logic.startRegions()
                self.ui.statusLabel.text = "Computing the Voronoi regions in the background ..."
                self._regionsTimer.start()

    def onPollRegions(self) -> None:
        if self._regionsJob is None:
            self._regionsTimer.stop()
            return
        update = self._regionsJob.poll()
        if not update.ended:
            return
        self._regionsTimer.stop()
        job, self._regionsJob = self._regionsJob, None
        with slicer.util.tryWithErrorDisplay("Could not compute the Voronoi regions."):
            if update.state != "succeeded":
                raise RuntimeError(update.error or f"The region map ended as {update.state}.")
            evaluation, prepared, n = update.result
            self.logic.showRegionMap(evaluation, prepared, n, outline=self.ui.regionsOutlineCheckBox.checked)
            self.ui.statusLabel.text = f"{n} Voronoi regions shown."
            if not self.ui.showRegionsCheckBox.checked or evaluation is not self.logic.lastResult:
                self.logic.setRegionsDisplay(self.ui.showRegionsCheckBox.checked, True)
        del job

    def onExportCsv(self) -> None:
        import qt

        path = qt.QFileDialog.getSaveFileName(
            None, "Export CC-Metrics table", "cc_metrics.csv", "CSV (*.csv)"
        )
        if path:
            with slicer.util.tryWithErrorDisplay("Could not write the CSV file."):
                self.logic.exportCsv(path)

    def onExportJson(self) -> None:
        import qt

        path = qt.QFileDialog.getSaveFileName(
            None, "Export CC-Metrics results", "cc_metrics.json", "JSON (*.json)"
        )
        if path:
            with slicer.util.tryWithErrorDisplay("Could not write the JSON file."):
                self.logic.exportJson(path)

    # ------------------------------------------------------------------ multi-rater (Peak Ground Truth)
    def setupMultiRaterSection(self) -> None:
        """A collapsible section: rater masks (>= 2), repeat sessions of the first rater; the
        predictions checked above are placed against the inter..intra-rater agreement band."""
        import ctk
        import qt

        section = ctk.ctkCollapsibleButton()
        section.text = "Multi-rater agreement"
        section.collapsed = True
        self.layout.addWidget(section)
        form = qt.QFormLayout(section)
        self.ratersSelector = slicer.qMRMLCheckableNodeComboBox()
        self.ratersSelector.nodeTypes = ["vtkMRMLSegmentationNode", "vtkMRMLLabelMapVolumeNode"]
        self.ratersSelector.setMRMLScene(slicer.mrmlScene)
        self.ratersSelector.toolTip = "One annotation per rater of the same case (at least two)."
        form.addRow("Raters:", self.ratersSelector)
        self.repeatsSelector = slicer.qMRMLCheckableNodeComboBox()
        self.repeatsSelector.nodeTypes = ["vtkMRMLSegmentationNode", "vtkMRMLLabelMapVolumeNode"]
        self.repeatsSelector.setMRMLScene(slicer.mrmlScene)
        self.repeatsSelector.toolTip = "Further sessions of the first checked rater (intra-rater agreement)."
        form.addRow("Repeat sessions:", self.repeatsSelector)
        self.multiRaterButton = qt.QPushButton("Compute agreement")
        self.multiRaterButton.toolTip = (
            "Pairwise Dice and CC-Dice, the inter/intra-rater band, a STAPLE consensus, and the "
            "predictions checked above against the band."
        )
        form.addRow(self.multiRaterButton)
        self.pairsTableView = slicer.qMRMLTableView()
        self.pairsTableView.setMRMLScene(slicer.mrmlScene)
        form.addRow("Pairs:", self.pairsTableView)
        self.modelsTableView = slicer.qMRMLTableView()
        self.modelsTableView.setMRMLScene(slicer.mrmlScene)
        form.addRow("Models:", self.modelsTableView)
        self.multiRaterStatus = qt.QLabel()
        self.multiRaterStatus.wordWrap = True
        form.addRow(self.multiRaterStatus)
        self.multiRaterButton.connect("clicked(bool)", self.onMultiRater)

    def onMultiRater(self) -> None:
        if self._computeJob is not None or not self._installRequirements():
            return
        with slicer.util.tryWithErrorDisplay("CC-Metrics could not read the raters.", waitCursor=True):
            p = self._parameterNode
            # main thread: what the nodes are; the masks, agreement and STAPLE run in the job runner
            inputs = self.logic.readMultiRaterInputs(
                list(self.ratersSelector.checkedNodes()),
                list(self.ui.predictionsSelector.checkedNodes()),
                list(self.repeatsSelector.checkedNodes()),
                label=p.labelValue or None,
                gridNode=p.gridVolume,
            )
            self._startForegroundJob(self.logic.startMultiRater(inputs), self._showAgreement)
            self.multiRaterStatus.text = "Computing the agreement (progress and Cancel above) ..."

    def _showAgreement(self, update) -> None:
        if update.state == "cancelled":
            self.multiRaterStatus.text = "Agreement cancelled; the tables were not changed."
            return
        with slicer.util.tryWithErrorDisplay("CC-Metrics could not compute the agreement."):
            if update.state != "succeeded":
                self.multiRaterStatus.text = ""
                raise RuntimeError(update.error or f"The agreement ended as {update.state}.")
            out = self.logic.showMultiRater(update.result)  # main thread: tables and consensus node
            self.pairsTableView.setMRMLTableNode(out.pair_table)
            self.modelsTableView.setMRMLTableNode(out.model_table)
            result = out.result
            band = f"inter-rater Dice {result.inter['dice']:.3f}, CC-Dice {result.inter['cc_dice']:.3f}"
            if result.intra:
                band += (
                    f"; intra-rater Dice {result.intra['dice']:.3f}, CC-Dice {result.intra['cc_dice']:.3f}"
                )
            self.multiRaterStatus.text = "\n".join([band, *result.warnings])


class CCMetricsModuleLogic(ScriptedLoadableModuleLogic):
    """Console-friendly entry points; the computation is in CCMetricsLib."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.lastResult = None

    def getParameterNode(self):
        return CCMetricsModuleParameterNode(super().getParameterNode())

    @staticmethod
    def requirements() -> list:
        """The Python packages CC-Metrics needs (the widget asks to install the missing ones)."""
        from AnatomyCommonLib.dependencies import read_requirements

        return read_requirements(os.path.join(os.path.dirname(__file__), "Resources", "requirements.txt"))

    def process(
        self,
        referenceNode,
        predictionNodes,
        referenceSegmentId=None,
        label=None,
        gridNode=None,
        metrics=("dice", "iou", "nsd", "hd95", "hd", "assd"),
        nsdToleranceMm=1.0,
        distanceWorstMm=None,
        showRegions=False,
        regionsOutline=True,
    ):
        """Evaluate ``predictionNodes`` against ``referenceNode``; returns CCMetricsLib's NodeEvaluation
        (``.comparison``, ``.component_table``, ``.summary_table``, ``.regions``).

        ``showRegions`` computes the region overlay here, on the calling thread (console use); the
        widget leaves it off and computes the overlay in the background (:meth:`startRegions`)."""
        from CCMetricsLib.mrml_nodes import compute_evaluation

        inputs = self.readInputs(referenceNode, predictionNodes, referenceSegmentId, label, gridNode)
        computed = compute_evaluation(
            inputs,
            metrics=metrics,
            nsd_tolerance=nsdToleranceMm,
            distance_worst=distanceWorstMm,
            with_regions=showRegions,
        )
        return self.showComputed(computed, regionsOutline=regionsOutline)

    def readInputs(self, referenceNode, predictionNodes, referenceSegmentId=None, label=None, gridNode=None):
        """Main thread: the masks of the reference and the predictions on the evaluation grid."""
        from AnatomyCommonLib.dependencies import check_requirements

        check_requirements(self.requirements(), "CC-Metrics")  # raises naming what is missing; no dialog
        from CCMetricsLib.mrml_nodes import read_evaluation_inputs

        return read_evaluation_inputs(
            referenceNode,
            predictionNodes,
            reference_segment_id=referenceSegmentId,
            label=label,
            grid_node=gridNode,
        )

    def submit(self, function, description: str):
        """Run ``function(job)`` in the module's job runner (one worker thread); returns the job."""
        from AnatomyCommonLib.background_jobs import JobWorker

        if getattr(self, "_worker", None) is None:
            self._worker = JobWorker("CC-Metrics background work")
        return self._worker.submit(function, description)

    def startCompute(
        self,
        inputs,
        metrics=("dice", "iou", "nsd", "hd95", "hd", "assd"),
        nsdToleranceMm=1.0,
        distanceWorstMm=None,
    ):
        """The metrics and table rows in the job runner (progress per prediction, Cancel); returns the job."""
        from CCMetricsLib.mrml_nodes import compute_evaluation

        return self.submit(
            lambda job: compute_evaluation(
                inputs, metrics=metrics, nsd_tolerance=nsdToleranceMm, distance_worst=distanceWorstMm, job=job
            ),
            "CC-Metrics",
        )

    def showComputed(self, computed, regionsOutline=True):
        """Main thread: computed rows into the result tables (those of the same reference are refilled)."""
        from CCMetricsLib.mrml_nodes import show_evaluation, show_regions

        previous = self.lastResult
        if previous is not None and self._stillInScene(previous.regions):
            show_regions(previous.regions, visible=False)  # stale until the new map is computed
        result = show_evaluation(computed)
        if result.regions is not None:
            show_regions(result.regions, visible=True, outline=regionsOutline)
        self.lastResult = result
        return result

    @staticmethod
    def _stillInScene(node):
        return node if node is not None and slicer.mrmlScene.IsNodePresent(node) else None

    def centerViewsOnComponent(self, row: int) -> None:
        """Centre every slice view on the component of a row of the per-component table."""
        from CCMetricsLib.mrml_nodes import table_row_position_ras

        if self.lastResult is None:
            return
        position = table_row_position_ras(self.lastResult.component_table, row)
        if position is not None:
            slicer.modules.markups.logic().JumpSlicesToLocation(*position, True)

    def setRegionsDisplay(self, visible: bool, outline: bool) -> None:
        """Show/hide the region overlay of the last result if it exists (it is never computed here)."""
        from CCMetricsLib.mrml_nodes import show_regions

        if self.lastResult is not None and self._stillInScene(self.lastResult.regions):
            show_regions(self.lastResult.regions, visible=visible, outline=outline)

    def regionsMissing(self) -> bool:
        """True when the last result has no region overlay yet."""
        return self.lastResult is not None and not self._stillInScene(self.lastResult.regions)

    def startRegions(self):
        """Compute the last result's region map in the module's job runner; returns the job (poll it).

        The job's result is ``(evaluation, prepared region segments, n)`` for :meth:`showRegionMap`.
        """
        from CCMetricsLib.mrml_nodes import prepare_regions

        evaluation = self.lastResult
        return self.submit(
            lambda job: (evaluation, *prepare_regions(evaluation.reference, evaluation.connectivity)),
            "CC-Metrics Voronoi regions",
        )

    def showRegionMap(self, evaluation, prepared, n: int, outline: bool = True) -> None:
        """Main thread: prepared region segments into the overlay of its evaluation (replacing it)."""
        from CCMetricsLib.mrml_nodes import show_prepared_regions, show_regions

        regions = show_prepared_regions(evaluation, prepared, n)
        if regions is not None:
            show_regions(regions, visible=True, outline=outline)

    def exportCsv(self, path: str) -> None:
        self.lastResult.comparison.to_csv(path)

    def exportJson(self, path: str) -> None:
        self.lastResult.comparison.to_json(path)

    def processMultiRater(self, raterNodes, predictionNodes=(), repeatNodes=(), label=None, gridNode=None):
        """Inter/intra-rater agreement, STAPLE consensus (a label-map node usable as the reference)
        and the predictions against the band, on the calling thread (console use); returns
        CCMetricsLib's NodeAgreement. The widget runs the computation in the job runner instead."""
        from CCMetricsLib.mrml_nodes import compute_agreement

        inputs = self.readMultiRaterInputs(raterNodes, predictionNodes, repeatNodes, label, gridNode)
        return self.showMultiRater(compute_agreement(inputs))

    def readMultiRaterInputs(self, raterNodes, predictionNodes=(), repeatNodes=(), label=None, gridNode=None):
        """Main thread: the grid and how to read the rater, repeat and prediction masks (no voxel copied)."""
        from AnatomyCommonLib.dependencies import check_requirements

        check_requirements(self.requirements(), "CC-Metrics")  # raises naming what is missing; no dialog
        from CCMetricsLib.mrml_nodes import read_agreement_inputs

        return read_agreement_inputs(
            list(raterNodes), list(predictionNodes), list(repeatNodes), label=label, grid_node=gridNode
        )

    def startMultiRater(self, inputs):
        """Masks, agreement, STAPLE and the consensus image in the job runner (progress per pair,
        Cancel between pairs); returns the job, whose result goes to :meth:`showMultiRater`."""
        from CCMetricsLib.mrml_nodes import compute_agreement

        return self.submit(lambda job: compute_agreement(inputs, job=job), "CC-Metrics agreement")

    def showMultiRater(self, computed):
        """Main thread: the computed rows into the pair/model tables and the consensus into its
        label-map node (those of the same first rater are refilled); returns the NodeAgreement."""
        from CCMetricsLib.mrml_nodes import show_agreement

        return show_agreement(computed)


class CCMetricsModuleTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer (Developer mode > Reload and Test)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        from AnatomyCommonLib.dependencies import skip_reason

        reason = skip_reason(CCMetricsModuleLogic.requirements(), "CC-Metrics")
        if reason:  # self-tests never install packages
            self.skipTest(reason)
        self.setUp()
        self.test_module_logic_creates_parameter_node()
        self.setUp()
        self.test_missed_lesion_shows_in_the_component_table()
        self.setUp()
        self.test_multi_rater_agreement_of_three_raters()

    def test_module_logic_creates_parameter_node(self):
        parameterNode = CCMetricsModuleLogic().getParameterNode()
        self.assertIsNotNone(parameterNode)
        self.delayDisplay("Test passed")

    def test_missed_lesion_shows_in_the_component_table(self):
        import numpy as np

        from AnatomyCommonLib import Volume, slicer_bridge

        reference = np.zeros((20, 20, 40), np.uint8)
        reference[8:12, 8:12, 5:9] = 1
        reference[8:12, 8:12, 30:35] = 1
        prediction = reference.copy()
        prediction[:, :, 25:] = 0
        referenceNode = slicer_bridge.volume_to_node(
            Volume.from_geometry(reference), "Reference", labelmap=True
        )
        predictionNode = slicer_bridge.volume_to_node(
            Volume.from_geometry(prediction), "Prediction", labelmap=True
        )
        result = CCMetricsModuleLogic().process(referenceNode, [predictionNode], distanceWorstMm=50)
        rows = slicer_bridge.table_node_to_rows(result.component_table)
        self.assertEqual([row["detected"] for row in rows], [1.0, 0.0])
        self.assertAlmostEqual(rows[1]["hd95"], 50.0)
        self.delayDisplay("Test passed")

    def test_multi_rater_agreement_of_three_raters(self):
        import numpy as np

        from AnatomyCommonLib import Volume, slicer_bridge

        base = np.zeros((20, 20, 40), np.uint8)
        base[8:12, 8:12, 5:9] = 1
        base[8:12, 8:12, 30:35] = 1
        masks = {"A": base, "B": np.roll(base, 1, axis=2), "C": np.roll(base, 1, axis=1)}
        nodes = [
            slicer_bridge.volume_to_node(Volume.from_geometry(mask), name, labelmap=True)
            for name, mask in masks.items()
        ]
        out = CCMetricsModuleLogic().processMultiRater(nodes)
        rows = slicer_bridge.table_node_to_rows(out.pair_table)
        self.assertEqual(len(rows), 3)
        self.assertAlmostEqual(
            rows[0]["dice"], 7 / 9
        )  # boxes of 64 and 80 voxels shifted by one: 2 * 112 / 288
        self.assertIsNotNone(out.consensus)
        self.delayDisplay("Test passed")
