"""The results of the workbench as MRML nodes in the trame-slicer scene (main thread only).

Every conversion goes through the Libs' MRML helpers (``AnatomyCommonLib.slicer_bridge``,
``DAPAtlasLib.mrml_nodes``, ``LIMISLib.mrml_nodes``, ``CCMetricsLib.mrml_nodes``), the same ones
the Slicer modules use; this file only decides which node shows what in which view.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from AnatomyCommonLib import slicer_bridge
from AnatomyCommonLib.volume import Volume

#: CT window of the slice views (soft tissue: width / level in HU).
CT_WINDOW_HU = (400.0, 40.0)

LESION_COLORS = {"lesions": (0.2, 0.9, 0.3), "prediction": (0.95, 0.25, 0.2)}


class SceneDisplay:
    """Nodes of the page in one scene: the CT and one segmentation per tool."""

    def __init__(self, slicer_app, *, on_box_moved=None) -> None:
        self.app = slicer_app
        self.scene = slicer_app.scene
        self.nodes: dict[str, Any] = {}
        self.on_box_moved = on_box_moved  # called with the ROI node after the user dragged it
        #: whether the LIMIS box shows its drag handles (see :meth:`set_box_handles`)
        self.box_handles = False

    # ------------------------------------------------------------------ helpers
    def _remove(self, key: str) -> None:
        node = self.nodes.pop(key, None)
        if node is not None and self.scene.GetNodeByID(node.GetID()) is not None:
            self.scene.RemoveNode(node)

    def clear(self) -> None:
        for key in list(self.nodes):
            self._remove(key)

    def slice_views(self):
        return self.app.view_manager.get_slice_views()

    def red_slice_node(self):
        for view in self.slice_views():
            if view.get_singleton_tag() == "Red":
                return view.get_view_node()
        return None

    def jump_to(self, ras) -> None:
        """Centre every slice view on a RAS point (mm)."""
        r, a, s = (float(v) for v in ras)
        for view in self.slice_views():
            view.get_view_node().JumpSliceByCentering(r, a, s)

    def red_view(self):
        for view in self.slice_views():
            if view.get_singleton_tag() == "Red":
                return view
        return None

    def red_xy_to_ras(self, x: float, y: float) -> np.ndarray | None:
        """RAS (mm) of a pixel of the axial view (interactor coordinates, origin bottom left)."""
        node = self.red_slice_node()
        if node is None:
            return None
        matrix = node.GetXYToRAS()
        m = np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])
        return (m @ np.array([float(x), float(y), 0.0, 1.0]))[:3]

    def red_slice_ras(self) -> np.ndarray | None:
        node = self.red_slice_node()
        if node is None:
            return None
        matrix = node.GetSliceToRAS()
        return np.array([matrix.GetElement(row, 3) for row in range(3)])

    # ------------------------------------------------------------------ images
    def show_ct(self, ct: Volume, lesions=None, prediction=None) -> None:
        """Replace the scene's content by the CT (slice views, shown in 3D as slice planes) and the
        lesion masks (volumes, or :meth:`prepare_mask` of them)."""
        self.clear()
        node = slicer_bridge.volume_to_node(ct, "CT", scene=self.scene)
        display = node.GetDisplayNode()
        display.SetAutoWindowLevel(False)
        display.SetWindowLevel(*CT_WINDOW_HU)
        self.nodes["ct"] = node
        self.app.display_manager.show_volume_in_slice_background(node)
        self.app.display_manager.show_volume_in_slice_foreground(None)
        for view in self.slice_views():
            view.set_visible_in_3d(True)
        self.app.display_manager.reset_views()
        for role, volume in (("lesions", lesions), ("prediction", prediction)):
            if volume is not None:
                self.show_mask(role, volume)

    @staticmethod
    def prepare_mask(role: str, volume: Volume):
        """Any thread (the worker's): a lesion mask as one segment built without the scene; None
        when the mask is empty."""
        binary = volume.with_array((volume.array > 0).astype(np.uint8))
        if not binary.array.any():
            return None
        description = slicer_bridge.LabelDescription(
            1, "reference lesions" if role == "lesions" else "predicted lesions", LESION_COLORS[role]
        )
        return slicer_bridge.prepare_segments(binary, [description])

    def show_mask(self, role: str, mask) -> None:
        """A lesion mask as a one-segment segmentation, outlined in the slice views (``mask``: from
        :meth:`prepare_mask`, or the mask volume itself)."""
        prepared = self.prepare_mask(role, mask) if isinstance(mask, Volume) else mask
        self._remove(role)
        if prepared is None:
            return
        node = slicer_bridge.attach_prepared_segments(
            prepared, prepared.segment_names[0], scene=self.scene, reference_volume_node=self.nodes.get("ct")
        )
        display = node.GetDisplayNode()
        display.SetVisibility2DFill(False)
        display.SetVisibility2DOutline(True)
        display.SetVisibility3D(False)
        self.nodes[role] = node

    # ------------------------------------------------------------------ LIMIS
    def show_limis(self, session, masks: dict[int, np.ndarray]) -> None:
        """Write the changed slices' masks into the structure's segment; box and clicks as markups."""
        from LIMISLib.mrml_nodes import box_to_roi, clicks_to_points, write_slice_mask

        ct_node = self.nodes.get("ct")
        if ct_node is None or session.target is None:
            return
        node = self.nodes.get("limis")
        if node is None:
            node = self.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "LIMIS")
            node.CreateDefaultDisplayNodes()
            node.SetReferenceImageGeometryParameterFromVolumeNode(ct_node)
            node.GetDisplayNode().SetVisibility3D(False)
            self.nodes["limis"] = node
        for slice_index, mask in masks.items():
            write_slice_mask(node, session.target, session.geometry, slice_index, mask, ct_node)
        active = session.active
        step = None if active is None else active.displayed
        if step is None:
            for key in ("limis_box", "limis_clicks"):
                self._remove(key)
            return
        new = self.nodes.get("limis_box") is None
        roi = box_to_roi(
            session.geometry,
            step.box_xyxy,
            session.active_slice,
            scene=self.scene,
            node=self.nodes.get("limis_box"),
        )
        self._markup_style(roi, locked=self.on_box_moved is None)
        roi.GetDisplayNode().SetHandlesInteractive(self.box_handles)
        self.nodes["limis_box"] = roi
        if new and self.on_box_moved is not None:
            import slicer

            roi.AddObserver(
                slicer.vtkMRMLMarkupsNode.PointEndInteractionEvent,
                lambda node, _event: self.on_box_moved(node),
            )
        if step.state.clicks:
            clicks = clicks_to_points(
                session.geometry,
                list(step.state.clicks),
                session.active_slice,
                scene=self.scene,
                node=self.nodes.get("limis_clicks"),
            )
            self._markup_style(clicks, locked=True)
            clicks.GetDisplayNode().SetHandlesInteractive(False)
            self.nodes["limis_clicks"] = clicks
        else:
            self._remove("limis_clicks")

    def set_box_handles(self, shown: bool) -> None:
        """Show or hide the LIMIS box's drag handles (translate / resize), now and for later boxes.

        Hidden unless the user wants to drag the box: with software OpenGL the handles made every
        render of the axial view about 10 times slower (7 -> 60-120 ms for a 900 x 830 view,
        measured here) and every mask update slower too.
        """
        self.box_handles = bool(shown)
        roi = self.nodes.get("limis_box")
        if roi is not None and roi.GetDisplayNode() is not None:
            roi.GetDisplayNode().SetHandlesInteractive(self.box_handles)

    @staticmethod
    def _markup_style(node, *, locked: bool) -> None:
        if node.GetDisplayNode() is None:
            node.CreateDefaultDisplayNodes()
        node.SetLocked(locked)
        display = node.GetDisplayNode()
        display.SetVisibility(True)
        display.SetPropertiesLabelVisibility(False)
        if node.IsA("vtkMRMLMarkupsROINode"):
            display.SetFillOpacity(0.0)

    # ------------------------------------------------------------------ DAP Atlas
    @staticmethod
    def prepare_dap(labels: Volume):
        """Any thread (the worker's): the DAP segments of a label map, built without the scene."""
        from DAPAtlasLib.mrml_nodes import prepare_dap_segments

        return prepare_dap_segments(labels)

    def show_dap(self, prepared):
        """The post-processed map as a segmentation with the DAP names, colours and terminology.

        ``prepared``: :meth:`prepare_dap` of the map (built in the worker; attaching it here is cheap),
        or the label map itself (then built here, on the loop's thread).
        """
        from DAPAtlasLib.mrml_nodes import attach_dap_segments

        if isinstance(prepared, Volume):
            prepared = self.prepare_dap(prepared)
        node = attach_dap_segments(
            prepared,
            "DAP Atlas (post-processed)",
            scene=self.scene,
            reference_volume_node=self.nodes.get("ct"),
            segmentation_node=self.nodes.get("dap"),
            key="web-app|dap",
        )
        display = node.GetDisplayNode()
        display.SetOpacity2DFill(0.45)
        display.SetVisibility3D(False)
        self.nodes["dap"] = node
        return node

    def dap_systems(self) -> dict[str, bool]:
        from DAPAtlasLib.mrml_nodes import system_visibility

        node = self.nodes.get("dap")
        return {} if node is None else system_visibility(node)

    def set_dap_system_visible(self, system: str, visible: bool) -> int:
        from DAPAtlasLib.mrml_nodes import set_system_visibility

        node = self.nodes.get("dap")
        return 0 if node is None else set_system_visibility(node, system, visible)

    # ------------------------------------------------------------------ CC-Metrics
    @staticmethod
    def prepare_regions(regions: Volume, n: int):
        """Any thread (the worker's): the Voronoi region segments, built without the scene."""
        from AnatomyCommonLib import slicer_bridge
        from CCMetricsLib.mrml_nodes import region_descriptions

        return slicer_bridge.prepare_segments(regions, region_descriptions(n)) if n else None

    def show_regions(self, prepared, n: int):
        """The Voronoi regions of the reference lesions as outlined segments (``prepared``: from
        :meth:`prepare_regions`, or the region map itself)."""
        from AnatomyCommonLib import slicer_bridge
        from CCMetricsLib.mrml_nodes import show_regions

        if not n:
            self._remove("cc_regions")
            return None
        if isinstance(prepared, Volume):
            prepared = self.prepare_regions(prepared, n)
        node = slicer_bridge.attach_prepared_segments(
            prepared,
            "CC-Metrics regions",
            scene=self.scene,
            reference_volume_node=self.nodes.get("ct"),
            segmentation_node=self.nodes.get("cc_regions"),
            replace_segments=True,  # a refreshed overlay replaces the old regions, never adds to them
        )
        show_regions(node, visible=True, outline=True)
        self.nodes["cc_regions"] = node
        return node

    def set_visible(self, key: str, visible: bool) -> None:
        node = self.nodes.get(key)
        if node is not None and node.GetDisplayNode() is not None:
            node.GetDisplayNode().SetVisibility(bool(visible))
