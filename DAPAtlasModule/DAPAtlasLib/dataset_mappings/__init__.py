"""Mappings from public datasets' labels to DAP Atlas labels, read by :mod:`DAPAtlasLib.evaluation`.

``btcv.json`` and ``word.json`` map label ids of the datasets' label maps; ``totalsegmentator.csv``
maps TotalSegmentator mask names (``<case>/segmentations/<name>.nii.gz``). See
:func:`DAPAtlasLib.evaluation.load_mapping` for the formats, which a user's own file may use too.
"""
