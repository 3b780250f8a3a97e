"""The classroom view: ``solara run app.py`` (``make app`` serves it on http://127.0.0.1:8765).

Everything lives in :mod:`ui`; this file only names the page for Solara.
"""

from ui.app import Page

__all__ = ["Page"]
