"""Helpers the browser tests share (fixtures are in ``conftest.py``)."""

from __future__ import annotations


def button(page, name: str):
    """The page's button labelled exactly ``name``."""
    return page.get_by_role("button", name=name, exact=True)


# -- the page rendered in-process (solara.render, no browser) ---------------------------------------------------
def run(m, weeks: int):
    """Step a model (a ``ClassroomModel`` or any Mesa model) ``weeks`` times; returns it."""
    for _ in range(weeks):
        m.step()
    return m


def rendered_page():
    """The classroom page rendered in-process; returns solara's render context to search."""
    import solara

    from ui.app import make_page

    return solara.render(solara.AppLayout(children=[make_page()()]), handle_error=False)[1]


def html_of(rc, cls: str) -> str:
    """The inner HTML of the page's ``solara.HTML`` elements with this class ('' if none)."""
    import solara.widgets

    return " ".join(w.widget.unsafe_innerHTML or "" for w in rc.find(solara.widgets.HTML)
                    if cls in (w.widget.attributes or {}).get("class", "").split()
                    or f"class='{cls}'" in (w.widget.unsafe_innerHTML or ""))
