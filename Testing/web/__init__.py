"""Browser tests of the web app (real Chromium, real server); see conftest.py."""
