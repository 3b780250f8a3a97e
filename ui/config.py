"""Settings of the classroom page (no heavy imports: the browser tests read them too)."""

TITLE = "Rare-earth market: classroom view"
# Play redraws every RENDER_INTERVAL weeks (and Step advances as many), chosen so that Play runs at >= 5
# weeks per second with every panel drawn (measured by `make bench`, section f).
# RENDER_INTERVAL sits on a position of the page's "Weeks per Step" slider (1, 3, 5, ...), which otherwise
# snaps it to a neighbour when the page opens.
RENDER_INTERVAL = 5
PLAY_INTERVAL_MS = 11  # pause between frames (no control on the page: drawing the panels takes far longer)
# how long the server keeps a page whose connection dropped without its tab closing (a closed or reloaded tab
# is freed at once): Solara's own default is 24 h (a Solara time span: "90s", "2m", ...)
SESSION_KEEP = "2m"
