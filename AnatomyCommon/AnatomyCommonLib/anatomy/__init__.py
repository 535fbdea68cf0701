"""Anatomy shared by every module: the DAP Atlas label schema and the synthetic phantom.

- :mod:`.label_schema`: label ids 0..144, names, sides, anatomical systems, display colours.
- :mod:`.label_terminology`: the SNOMED-CT code of every label.
- :mod:`.label_exports`: the schema as CSV/JSON, a Slicer colour table and a Slicer terminology.
- :mod:`.phantom`: synthetic whole-body CTs with labels and lesions, on any grid.

Nothing here imports ``slicer``, ``qt`` or ``vtk``.
"""
