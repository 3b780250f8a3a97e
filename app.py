"""The classroom view: ``solara run app.py`` (``make app`` serves it on http://127.0.0.1:8765).

Everything lives in :mod:`ui`; this file only names the pages for Solara: the classroom page at ``/``, and the
team game's pages at ``/game`` (the game master) and ``/team`` (a team), see :mod:`ui.game_page`.
"""

import ui.app
from ui.game_page import routes_with

routes = routes_with(ui.app.Page)

__all__ = ["routes"]
