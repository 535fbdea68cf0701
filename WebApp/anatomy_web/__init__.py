"""The toolkit in a browser: DAP Atlas, LIMIS and CC-Metrics on one trame-slicer page.

``python -m anatomy_web --port 8765 --data DIR --output DIR`` (or ``./scripts/run_web_app.sh``).
All computation comes from the Libs; :mod:`.workbench` holds the state without the page,
:mod:`.scene` puts results into the MRML scene, :mod:`.app` is the page.
"""
