"""Solara components of the classroom view: the panels, the intervention bar and the start-of-run switches.

Components that show the running model call ``update_counter.get()`` (Mesa's redraw signal) through
:func:`Dashboard`, which passes the counter down as ``tick``; each chart redraws only when its own inputs
(``tick``, the model, its options) change. Every panel draws inside a guard: a failing panel shows its
error and the rest of the page keeps working.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import html
import logging
import time
from collections.abc import Callable, Sequence

import solara
from mesa.visualization.utils import update_counter
from pydantic import ValidationError

from model.results import OUTPUTS
from model.scenario import list_scenarios, load_scenario
from ui import charts, exports, network_map, projects, webcharts
from ui.history import History
from ui.play import FrameGate
from ui.policy_controls import SWITCH_BY_KEY, Control, PolicySetup
from ui.session import INTERVENTIONS, LENDERS, ClassroomModel
from ui.words import SOURCE_CLASS, SOURCE_NEWS, SOURCE_START, Marker, Told, date_words, markers

log = logging.getLogger(__name__)

# bumped when the page (not a step) changes what the event log and the buttons show
ui_version = solara.reactive(0)

CARD_STYLE = {"margin": "0 0 10px 0"}
DOUBLE_CLICK_S = 0.6  # a second press of the same intervention button within this is the same click


# ============================================================================================== helpers
def network_view(m: ClassroomModel) -> network_map.NetworkView:
    """This week's route network for the map, with every plant and followed mine in its phase (read-only)."""
    r = m.routes
    g = r.graph
    names = {s.sid: s.name for s in m.states} | {a.gid: a.name for a in m.armed_groups}
    facs = projects.facilities(m, m.watch)
    followed = set(projects.mine_sites(m).tolist())
    shared = frozenset(n for i, n in enumerate(m.fleet.node) if i not in followed)
    return network_map.NetworkView(
        pos=r.positions(), kind={n: g.nodes[n]["kind"] for n in g}, name={n: g.nodes[n]["name"] for n in g},
        country={n: g.nodes[n]["country"] for n in g},
        src=list(r.edge_src), dst=list(r.edge_dst), is_open=r.edge_open.copy(),
        controller=list(r.edge_controller), flow=m.edge_flow.copy(), controller_names=names,
        groups=[a.gid for a in m.armed_groups], date=str(m.date),
        facilities=tuple((f.id, f.node, f.kind) for f in facs), phases=tuple(f.phase for f in facs),
        shared_nodes=shared)


def myanmar_corridors(m: ClassroomModel) -> list[str]:
    """Corridor labels of routes leaving Myanmar (the flow chart keeps them all in its legend)."""
    r = m.routes
    return sorted({c for i, c in enumerate(r.edge_corridor) if c and r.nodes[r.edge_src[i]].country == "MM"})


def place_names(m: ClassroomModel) -> dict[str, str]:
    return {s.sid: s.name for s in m.states}


def story_product(m: ClassroomModel) -> str:
    """The heavy rare earth the stories are about (Dy in the shipped world): it opens the product pickers."""
    return m.behaviour.heavy_marker_product


def price_table(m: ClassroomModel, markets: charts.Markets) -> str:
    """This week's prices, a row per market region and a column per product, and the ratio of each
    importing region's price to its source's (the export wedge), as an HTML table."""
    cells = {(reg, p): m.price(reg, p) for reg in markets.regions for p in markets.products}
    rows = []
    for reg in markets.regions:
        row = "".join(f"<td class='ree-price' data-region='{reg}' data-product='{p}'>{cells[(reg, p)]:,.1f}</td>"
                      for p in markets.products)
        rows.append(f"<tr><th style='text-align:left'>{html.escape(markets.name(reg))}</th>{row}</tr>")
    for reg, src in markets.import_pairs():
        ratio = "".join(f"<td class='ree-ratio' data-product='{p}'>{cells[(reg, p)] / cells[(src, p)]:.2f}</td>"
                        for p in markets.products)
        rows.append(f"<tr><th style='text-align:left;color:#666'>{html.escape(markets.name(reg))} / "
                    f"{html.escape(markets.name(src))}</th>{ratio}</tr>")
    head = "".join(f"<th>{html.escape(p)}</th>" for p in markets.products)
    return (f"<table class='ree-price-table' style='font-size:0.9em;border-spacing:14px 2px'>"
            f"<tr><th style='text-align:left'>{OUTPUTS['price'].label}, {OUTPUTS['price'].unit}, week {int(m.steps)}"
            f"</th>{head}</tr>{''.join(rows)}</table>")


@solara.component
def Chart(make: Callable[[], charts.LiveChart], update: Callable[[charts.LiveChart], object], build_key: list,
          dependencies: list, name: str):
    """A live matplotlib chart as a PNG <img> (class ``ree-chart ree-<name>``).

    ``make`` builds the chart when ``build_key`` changes (a new model); ``update`` moves its data and it is
    redrawn when ``dependencies`` change (a frame, an option)."""
    chart = solara.use_memo(make, build_key)

    def draw() -> tuple[bytes | None, str | None]:
        t0 = time.perf_counter()
        try:
            update(chart)
            data = chart.png()
        except Exception as exc:  # noqa: BLE001 - one broken panel must not take the page down
            log.exception("panel %s failed to draw", name)
            return None, f"{type(exc).__name__}: {exc}"
        log.debug("panel %s drawn in %.0f ms", name, 1000 * (time.perf_counter() - t0))
        return data, None

    data, err = solara.use_memo(draw, [*build_key, *dependencies])
    if err is not None:
        solara.Error(f"This panel could not be drawn: {err}")
    else:
        solara.Image(data, width="100%", classes=["ree-chart", f"ree-{name}"])


def shown_product(value: solara.Reactive[str], m: ClassroomModel) -> str:
    """The product a panel shows: the one picked, or the story product if the pick is not in this model's
    world (after a Reset to another world)."""
    return value.value if value.value in m.products else story_product(m)


@solara.component
def ProductPicker(value: solara.Reactive[str], m: ClassroomModel):
    """A button per product of the model's world."""
    solara.ToggleButtonsSingle(value=shown_product(value, m), on_value=value.set, values=list(m.products), dense=True)


# =============================================================================================== header
def short_date(d: dt.date) -> str:
    """'3 Feb 2025'."""
    return f"{d.day} {d.strftime('%b')} {d.year}"


def run_changes(m: ClassroomModel) -> list[str]:
    """What makes this run differ from its scenario as written, in words: the start-of-run switches, and the
    class's changes as they took effect (with their week) or as they will at the next step."""
    out = []
    if m.setup_summary != "none":
        out.append(f"switched on at the start: {m.setup_summary}")
    out += [f"{t.label} (week {t.week})" for t in m.class_changes()]
    out += [f"{t.label} (next step)" for t in m.pending_told()]
    return out


def scripted_summary(m: ClassroomModel) -> str:
    """The scenario's own timeline as labels with their weeks (or that it has none: the baseline)."""
    # the week an item takes effect: the first step dated on or after its start (step 1 at the earliest)
    items = [(max(1, -(-(x.start - m.spec.start).days // 7)), m.words.item(x).label) for x in m.scripted]
    if not items:
        return f"{m.scenario_name} has no events of its own"
    shown = [f"{label} (week {w})" for w, label in sorted(items)[:6]]
    more = f" and {len(items) - 6} more" if len(items) > 6 else ""
    return f"{m.scenario_name}'s own events ({', '.join(shown)}{more})"


@solara.component
def Header(model: solara.Reactive[ClassroomModel], tick: int, version: int = 0):
    """The run on screen: scenario, week and date in words, and what this run is. Once the class has
    changed the run (an intervention, a start-of-run switch, a scenario policy ended), the scenario's own
    description no longer describes it ("no shocks" in the baseline): the header lists the scenario's own
    timeline and every change instead (``.ree-run-changes``)."""
    m = model.value
    desc = m.spec.description or ""
    with solara.Row(style={"align-items": "baseline", "flex-wrap": "wrap", "gap": "12px"}):
        solara.HTML(tag="div", unsafe_innerHTML=(
            f"<span style='font-size:1.25em;font-weight:600'>{html.escape(m.scenario_name)}</span>"
            f"&nbsp; <span class='ree-date' style='font-size:1.15em'>week {int(m.steps)} · {date_words(m.date)}</span>"
            f"&nbsp; <span style='color:#666'>(seed {m.seed}; runs to {date_words(m.spec.end)})</span>"))
    changes = run_changes(m)
    if changes:
        solara.HTML(tag="div", classes=["ree-run-changes"], unsafe_innerHTML=(
            f"<div style='color:#444'><b>This run:</b> {html.escape(scripted_summary(m))}; changed by the class: "
            f"<span style='color:#b35900;font-weight:600'>{html.escape('; '.join(changes))}</span>.</div>"))
    else:
        solara.Text(desc, style={"color": "#444"}, classes=["ree-run-desc"])
    if m.notice:
        solara.Warning(m.notice)
    if m.error is not None:
        solara.Error(
            f"The model stopped in week {m.error.week} ({date_words(m.error.date)}): {m.error.message}. "
            "The page and the server still work: press Reset to start again.",
            classes=["ree-step-error"])
    elif not m.running:
        solara.Info(f"The run reached its horizon ({date_words(m.spec.end)}). Press Reset to start again.")


# ========================================================================================= interventions
@solara.component
def InterventionBar(model: solara.Reactive[ClassroomModel], version: int, in_force: tuple[int, ...] = (),
                    failed: bool = False, fundable: tuple[str, ...] = ()):
    """The class's buttons: each intervention (a toggle's second button ends it), a lender funding the
    planned project picked in a list (``fundable``: their ids, so the list follows the run), and an *End*
    button per policy the scenario or a start switch put in force (``in_force``: their ids, so the bar
    redraws when that list changes, not every frame).

    Duplicate clicks: a button says what it asks for (``on``), and the model ignores a press that asks for
    what is already so, or a one-shot pressed twice in a week (:meth:`ClassroomModel.intervene`). The
    server handles a double click's second click after the first one's redraw, when the toggle has become its
    own undo button: a press of the same button within :data:`DOUBLE_CLICK_S` of the last is taken as the
    same click and ignored (no one reads the new label and decides to undo that fast)."""
    m = model.value
    problem = solara.use_reactive("")
    last_press = solara.use_memo(dict, [m])  # button key -> time.monotonic() of its last press

    def run(action: Callable[[], object], what: str) -> None:
        try:
            action()
            problem.set("")
        except Exception as exc:  # noqa: BLE001 - say so on the page; the run goes on
            log.exception("intervention %s failed", what)
            problem.set(f"Could not schedule this intervention: {type(exc).__name__}: {exc}")
        ui_version.value += 1

    def double_click(key: str) -> bool:
        now, before = time.monotonic(), last_press.get(key)
        last_press[key] = now
        return before is not None and now - before < DOUBLE_CLICK_S

    def press(key: str, on: bool) -> None:
        if not double_click(key):
            run(lambda: model.value.intervene(key, on=on), key)

    def end(item) -> None:
        if not double_click(f"end-{id(item)}"):
            run(lambda: model.value.end_item(item), f"end {type(item).__name__}")

    pick = solara.use_reactive("")  # the project picked in the list (its label)
    lender = solara.use_reactive(next(iter(LENDERS)))
    options = {project_choice(m, p): p.id for p in m.financeable()}
    picked = pick.value if pick.value in options else next(iter(options), "")

    def fund() -> None:
        if picked and not double_click("fund"):
            run(lambda: model.value.fund(options[picked], lender.value), "fund")

    with solara.Card("Interventions: they take effect at the next step", style=CARD_STYLE):
        if problem.value:
            solara.Error(problem.value)
        with solara.Row(style={"flex-wrap": "wrap", "gap": "8px"}):
            for iv in INTERVENTIONS:
                on = m.is_on(iv.key)
                label = iv.undo_label if (on and iv.undo_label) else iv.label
                with solara.Tooltip(iv.help):
                    solara.Button(label, on_click=lambda k=iv.key, o=on: press(k, not o),
                                  color="warning" if on else "primary", outlined=not on, disabled=failed,
                                  classes=[f"ree-iv-{iv.key}"])
        with solara.Row(style={"flex-wrap": "wrap", "gap": "8px", "align-items": "center", "margin-top": "6px"}):
            if options:
                solara.Select(label="Finance a planned plant or mine outside China", values=list(options),
                              value=picked, on_value=pick.set, classes=["ree-fund-project"],
                              style={"min-width": "380px", "max-width": "560px"})
                solara.ToggleButtonsSingle(value=lender.value, on_value=lender.set, values=list(LENDERS), dense=True,
                                           classes=["ree-fund-lender"])
                with solara.Tooltip("The lender commits 80 % of its cost at once: permits first, then construction, "
                                    "then it comes online at half utilisation, if it can get ore. The map and the "
                                    "project table show where it stands."):
                    solara.Button(f"Fund it ({lender.value})", on_click=fund, color="primary", outlined=True,
                                  disabled=failed, classes=["ree-iv-fund"])
            else:
                solara.Text("Every planned plant and mine outside China is funded or under way.",
                            style={"font-size": "0.85em", "color": "#555"})
        items = [x for x in m.endable() if id(x) in in_force]
        if items:
            solara.Text("In force from the scenario: press to end it at the next step",
                        style={"font-size": "0.85em", "color": "#555", "margin": "8px 0 2px 0"})
            with solara.Row(style={"flex-wrap": "wrap", "gap": "8px"}):
                for k, item in enumerate(items):
                    ending = m.words.item(item, "ends")
                    with solara.Tooltip(f"{ending.text} {ending.why}"):
                        solara.Button(f"End: {m.words.item(item).label}", on_click=lambda x=item: end(x),
                                      color="secondary", outlined=True, disabled=failed,
                                      classes=["ree-end-policy", f"ree-end-{k}"])


def project_choice(m: ClassroomModel, p) -> str:
    """A planned project in the finance list: its name, country and what it is ('..., Australia: plant and
    its mine Nolans (Arafura), US$2,100M')."""
    what = ("mine" if p.kind == "mine" else "magnet plant" if p.kind == "magnet" else
            f"plant and its mine{'s' if len(p.companions) > 1 else ''} {', '.join(c.name for c in p.companions)}"
            if p.companions else "plant")
    return f"{p.name}, {country_name(m, p.country)}: {what}, US${p.capex_musd:,.0f}M"


def country_name(m: ClassroomModel, sid: str) -> str:
    """'Australia', 'Rest of world' (without the world file's list of who is in it)."""
    return m.words.state(sid, the=False).split(" (")[0]


# =============================================================================================== panels
MAX_PRICE_PANELS = 4  # a world with more products opens the price chart on its first three; the picker adds more


def default_price_products(products: Sequence[str]) -> list[str]:
    """The products the price chart opens on: all of them in a small world, else the first three (the
    world's order puts the magnet oxides NdPr, Dy and Tb first)."""
    return list(products) if len(products) <= MAX_PRICE_PANELS else list(products[:3])


@solara.component
def PricePanel(model: solara.Reactive[ClassroomModel], history: History, tick: int, marks: tuple[Marker, ...] = ()):
    log_scale = solara.use_reactive(False)
    m = model.value
    picked = solara.use_reactive(default_price_products(m.products))
    chosen = tuple(p for p in m.products if p in picked.value) or tuple(default_price_products(m.products))
    markets = solara.use_memo(lambda: dataclasses.replace(charts.Markets.of(m), products=chosen), [m, chosen])
    with solara.Card(f"Prices: {' beside '.join(markets.names)}", style=CARD_STYLE):
        with solara.Row(style={"align-items": "center", "flex-wrap": "wrap"}):
            solara.Checkbox(label="log scale", value=log_scale)
            if len(m.products) > MAX_PRICE_PANELS:  # a product picker, not more fixed panels
                solara.ToggleButtonsMultiple(value=list(chosen), on_value=picked.set, values=list(m.products),
                                             dense=True)
        webcharts.LiveWebChart(lambda: webcharts.with_markers(webcharts.price_spec(history, markets, log_scale.value),
                                                              history, marks),
                               [m, tick, log_scale.value, chosen, marks], "prices", int(m.steps))
        solara.HTML(tag="div", unsafe_innerHTML=price_table(m, markets))


WHO = {SOURCE_CLASS: "your class", SOURCE_START: "start switch", SOURCE_NEWS: "", "scenario": "scenario"}


def log_item(t: Told, pending: bool = False) -> str:
    """One event as an HTML list item: date and week, who did it, the sentence, why it matters; the model's
    own text is the item's tooltip."""
    who = WHO.get(t.source, "")
    tag = (f" <span class='ree-who' style='font-size:0.8em;padding:0 4px;border-radius:3px;"
           f"background:{'#fde3c8' if t.source == SOURCE_CLASS else '#eee'}'>{html.escape(who)}</span>") if who else ""
    why = (f"<div class='ree-why' style='color:#555;font-size:0.92em'>Why it matters: {html.escape(t.why)}</div>"
           if t.why else "")
    if pending:
        return (f"<li class='ree-pending' style='color:#b35900'><i>Next step: {html.escape(t.text)}</i>{why}</li>")
    when = f"{short_date(t.date)}, week {t.week}" if t.date is not None else ""
    return (f"<li class='ree-event ree-src-{t.source}' title='{html.escape(t.raw, quote=True)}' "
            f"style='margin-bottom:4px'><b>{when}</b>{tag}: {html.escape(t.text)}{why}</li>")


@solara.component
def EventLog(model: solara.Reactive[ClassroomModel], tick: int, version: int):
    m = model.value
    items = [log_item(t, pending=True) for t in m.pending_told()]
    items += [log_item(t) for t in reversed(m.told[-60:])]
    if not items:
        items = ["<li style='color:#888'>No events yet. Press Step or ▶, or an intervention.</li>"]
    with solara.Card("Event log", style=CARD_STYLE):
        solara.HTML(tag="div", unsafe_innerHTML=(
            "<ul class='ree-event-log' style='max-height:640px;overflow-y:auto;padding-left:18px;margin:0;"
            f"font-size:0.9em;line-height:1.4'>{''.join(items)}</ul>"))


@solara.component
def MapPanel(model: solara.Reactive[ClassroomModel], tick: int):
    m = model.value
    view = network_view(m)
    with solara.Card("Supply network: route width = ore flow this week, dashed = closed, colour = who controls it; "
                     "plants and mines coloured by status", style=CARD_STYLE):
        Chart(lambda: network_map.MapChart(view), lambda c: c.update(view), [m, network_map.MapChart.structure(view)],
              [tick], "map")


KIND_WORDS = {"plant": "", "magnet": " (magnets)", "mine": " (mine)"}  # after a facility's name in the project table


def project_table(m: ClassroomModel) -> str:
    """Every plant and mine that is not simply operating since the start, as an HTML table: where it stands
    (the map's colours), when it comes online, who funds it, and what it does once it runs."""
    facs = sorted((f for f in projects.facilities(m, m.watch) if f.project),
                  key=lambda f: (projects.KINDS.index(f.kind), f.name))
    if not facs:
        return "<p class='ree-projects' style='color:#666'>No plant or mine projects in this world.</p>"
    week = int(m.steps)
    magnets = any(f.kind == "magnet" for f in facs)
    rows = []
    for f in facs:
        ph = projects.PHASES[f.phase]
        dot = (f"<span style='display:inline-block;width:0.9em;height:0.9em;background:{ph.colour};"
               f"border:1px solid #222;margin-right:6px;vertical-align:-0.1em'></span>")
        running = f.status == "operating"
        use = f"{f.utilisation:.0%}" if running and f.capacity_t > 0 else ""
        out = f"{f.output_t:,.1f}" if running else ""
        rows.append(
            f"<tr class='ree-project' data-id='{html.escape(f.id)}' data-phase='{f.phase}'>"
            f"<td>{html.escape(f.name)}{KIND_WORDS[f.kind]}</td>"
            f"<td>{html.escape(country_name(m, f.country))}</td>"
            f"<td class='ree-project-status' style='white-space:nowrap'>{dot}{html.escape(ph.label)}</td>"
            f"<td>{html.escape(projects.online_words(f, m.date, week))}</td>"
            f"<td>{html.escape(f.financed_by or '')}</td>"
            f"<td style='text-align:right'>{f.nameplate_t:,.0f}</td>"
            f"<td style='text-align:right'>{use}</td><td style='text-align:right'>{out}</td></tr>")
    head = "".join(f"<th style='text-align:{a};vertical-align:bottom'>{t}</th>" for t, a in (
        ("plant or mine", "left"), ("country", "left"), ("status", "left"), ("online", "left"),
        ("funded by", "left"), ("capacity<br>t/week", "right"), ("utili&shy;sation", "right"),
        ("ore in (magnets out)<br>t this week" if magnets else "ore in<br>t this week", "right")))
    return (f"<table class='ree-projects' style='width:100%;font-size:0.95em;border-spacing:10px 3px'>"
            f"<tr>{head}</tr>{''.join(rows)}</table>{finance_words(m)}"
            "<div style='font-size:0.85em;color:#555;margin-top:4px'>Capacity in t of rare-earth oxide a week"
            f"{' (a magnet plant: t of magnets)' if magnets else ''}; "
            "ore in: what a plant processed (a mine mined) this week"
            f"{'; a magnet plant shows the magnets it made' if magnets else ''}. A plant comes online at half utilisation and "
            f"ramps up; one that processes nothing {projects.NO_FEED_WEEKS} weeks in a row has no feed.</div>")


def finance_words(m: ClassroomModel) -> str:
    """The lenders' money so far, as a line under the project table (the model's ``finance_*`` outputs): what
    each committed, what it has paid out as the projects are permitted and built, and what was lost on
    projects cancelled before they ran. Empty before any lender commits."""
    money = m.finance.by_lender()
    if not money:
        return ""
    parts = []
    for lender, (committed, spent, stranded) in money.items():
        lost = f", US${stranded:,.0f}M lost on cancelled projects" if stranded > 0.5 else ""
        parts.append(f"{html.escape(lender)}: US${committed:,.0f}M committed, US${spent:,.0f}M paid out{lost}")
    return ("<div class='ree-finance' style='font-size:0.95em;margin-top:6px'><b>Money lent:</b> "
            + "; ".join(parts) + ".</div>")


@solara.component
def ProjectPanel(model: solara.Reactive[ClassroomModel], tick: int):
    m = model.value
    with solara.Card("Projects: new plants and mines, coloured by status as on the map", style=CARD_STYLE):
        solara.HTML(tag="div", unsafe_innerHTML=project_table(m))


@solara.component
def FlowPanel(model: solara.Reactive[ClassroomModel], history: History, tick: int, marks: tuple[Marker, ...] = ()):
    m = model.value
    with solara.Card(OUTPUTS["myanmar_ore_flow"].label, style=CARD_STYLE):
        webcharts.LiveWebChart(lambda: webcharts.with_markers(webcharts.flow_spec(history, myanmar_corridors(m)),
                                                              history, marks), [m, tick, marks], "flows", int(m.steps))


@solara.component
def ShortagePanel(model: solara.Reactive[ClassroomModel], history: History, tick: int, marks: tuple[Marker, ...] = ()):
    m = model.value
    product = solara.use_reactive(story_product(m))
    with solara.Card(f"{OUTPUTS['shortage'].label} by buyer region", style=CARD_STYLE):
        shown = shown_product(product, m)
        ProductPicker(product, m)
        webcharts.LiveWebChart(lambda: webcharts.with_markers(
            webcharts.region_lines_spec(history, "shortage", shown, place_names(m)), history, marks),
                               [m, tick, shown, marks], "shortage", int(m.steps))


@solara.component
def StockpilePanel(model: solara.Reactive[ClassroomModel], history: History, tick: int, marks: tuple[Marker, ...] = ()):
    m = model.value
    product = solara.use_reactive(story_product(m))
    with solara.Card(f"{OUTPUTS['stockpile'].label} levels", style=CARD_STYLE):
        shown = shown_product(product, m)
        ProductPicker(product, m)
        webcharts.LiveWebChart(lambda: webcharts.with_markers(webcharts.region_lines_spec(
            history, "stockpile", shown, place_names(m), charts.STOCKPILE_EMPTY), history, marks),
                               [m, tick, shown, marks], "stockpile", int(m.steps))


@solara.component
def SharePanel(model: solara.Reactive[ClassroomModel], history: History, tick: int, marks: tuple[Marker, ...] = ()):
    m = model.value
    with solara.Card(OUTPUTS["china_refined_share"].label, style=CARD_STYLE):
        refined = [p for p in m.products if m.world.product(p).stage == "oxide"]  # magnets are not refined
        webcharts.LiveWebChart(lambda: webcharts.with_markers(webcharts.share_spec(history, refined), history, marks),
                               [m, tick, marks], "share", int(m.steps))


@solara.component
def Dashboard(model: solara.Reactive[ClassroomModel], setup: PolicySetup, gate: FrameGate | None = None):
    """Every panel of the page for the current model (a new model after Reset gets a new history).

    After each render (an effect: the widgets are updated and their messages sent by then) it tells
    ``gate`` which week the page shows, which the Play loop waits for before it steps again."""
    tick = update_counter.get()
    version = ui_version.get()
    m = model.value
    week = int(m.steps)  # the week this render draws
    history = solara.use_memo(History, [m])
    history.update(m)
    solara.use_effect(lambda: gate.shown(m, week) if gate is not None else None)  # after every render
    n_told = len(m.told)
    marks = solara.use_memo(lambda: tuple(markers(m.told)), [m, n_told])  # a new tuple only when events come
    in_force = tuple(id(x) for x in m.endable())
    with solara.Column(style={"padding": "4px 12px", "gap": "0"}):
        Header(model, tick, version)
        with solara.Columns([8, 4]):
            with solara.Column(style={"gap": "0"}):
                InterventionBar(model, version, in_force, m.error is not None,
                                tuple(p.id for p in m.financeable()))
                PricePanel(model, history, tick, marks)
            EventLog(model, tick, version)
        MapPanel(model, tick)
        ProjectPanel(model, tick)
        with solara.Columns([6, 6]):
            FlowPanel(model, history, tick, marks)
            ShortagePanel(model, history, tick, marks)
        with solara.Columns([6, 6]):
            SharePanel(model, history, tick, marks)
            StockpilePanel(model, history, tick, marks)


# ====================================================================================== start-of-run setup
@solara.component
def SidebarCards(setup: PolicySetup, model: solara.Reactive[ClassroomModel], gate: FrameGate | None = None):
    """The page's own sidebar cards, under the controls. The page puts them in its sidebar itself: a
    ``solara.Sidebar`` inside the dashboard (which renders every frame) made the whole layout, sidebar
    included, re-render with each frame of Play (~120 widgets updated per frame instead of ~30)."""
    PolicyCard(setup, model)
    ExportCard(model, gate)
    ScenarioCard()


@solara.component
def RunClock(model: solara.Reactive[ClassroomModel]):
    """The week and date in words (``.ree-clock``, ``data-week``), where SolaraViz showed 'Time: 30.0'."""
    update_counter.get()  # follows every frame
    m = model.value
    solara.HTML(tag="div", classes=["ree-clock"], attributes={"data-week": str(int(m.steps))}, unsafe_innerHTML=(
        f"Week {int(m.steps)} of {m.weeks}: {date_words(m.date)}"))


def _guarded(make: Callable[[], bytes], what: str) -> Callable[[], bytes]:
    """An export that fails says so in the file instead of taking the sidebar down (FileDownload re-raises)."""

    def run() -> bytes:
        try:
            return make()
        except Exception as exc:  # noqa: BLE001 - shown in the downloaded file; logged for the teacher
            log.exception("export %s failed", what)
            return f"export failed: {type(exc).__name__}: {exc}\n".encode()

    return run


@solara.component
def ExportCard(model: solara.Reactive[ClassroomModel], gate: FrameGate | None = None):
    """Download buttons: the run's results table as CSV and each chart as PNG, as the run stands when the
    button is pressed (read holding the gate's ``stepping`` lock, so never in the middle of a frame)."""
    m = model.value

    def locked(fn: Callable[[ClassroomModel], bytes]) -> Callable[[], bytes]:
        def run() -> bytes:
            if gate is None:
                return fn(model.value)
            with gate.stepping:
                return fn(model.value)

        return run

    # the callables stay the same object across renders: FileDownload forgets a click when its data changes
    csv = solara.use_memo(lambda: _guarded(locked(exports.results_csv), "csv"), [])
    pngs = solara.use_memo(lambda: {name: _guarded(locked(lambda mm, n=name: exports.chart_png(mm, n)), name)
                                    for name in exports.CHARTS}, [])
    with solara.Card("Save this run", style=CARD_STYLE):
        solara.Text("As the run stands when you press: every week so far.",
                    style={"font-size": "0.8em", "color": "#666"})
        with solara.FileDownload(csv, filename=f"{exports.stem(m, 'results')}.csv", mime_type="text/csv"):
            solara.Button("Data: every output (CSV)", icon_name="mdi-table-arrow-down", color="primary", text=True,
                          classes=["ree-export-csv"])
        with solara.Row(style={"flex-wrap": "wrap", "gap": "0"}):
            for name, title in exports.CHARTS.items():
                with solara.FileDownload(pngs[name], filename=f"{exports.stem(m, name)}.png", mime_type="image/png"):
                    solara.Button(f"{title} (PNG)", icon_name="mdi-image-outline", text=True, small=True,
                                  classes=[f"ree-export-{name}"])


@functools.cache
def scenario_descriptions() -> tuple[tuple[str, str], ...]:
    return tuple((name, load_scenario(name, check=False).description) for name in list_scenarios())


@solara.component
def ScenarioCard():
    """What each scenario in the picker is (the picker applies with Reset)."""
    with solara.Card("The scenarios", style=CARD_STYLE):
        with solara.Details("show what each scenario is"):
            solara.HTML(tag="div", unsafe_innerHTML="".join(
                f"<p style='font-size:0.85em;margin:0 0 6px 0'><b>{html.escape(n)}</b>: {html.escape(d)}</p>"
                for n, d in scenario_descriptions()))


@solara.component
def ControlInput(control: Control, value, on_value: Callable):
    """A generated control; sliders show their value in the label (Vuetify shows it only while dragging)."""
    c = control
    if c.kind == "bool":
        solara.Switch(label=c.label, value=bool(value), on_value=on_value)
    elif c.kind == "choice":
        solara.Select(label=c.label, values=list(c.choices), value=value, on_value=on_value)
    elif c.kind == "int":
        solara.SliderInt(f"{c.label}: {int(value)}", value=int(value), min=int(c.min), max=int(c.max), step=1,
                         on_value=on_value)
    else:
        solara.SliderFloat(f"{c.label}: {float(value):g}", value=float(value), min=c.min, max=c.max, step=c.step,
                           on_value=on_value)
    if c.help:
        solara.Text(c.help, style={"font-size": "0.75em", "color": "#777", "margin": "-6px 0 4px 0"})


def switch_preview(setup: PolicySetup, key: str, start: dt.date, m: ClassroomModel) -> str:
    """What a start-of-run switch will do, in the event log's words (or why its values are invalid)."""
    try:
        item = SWITCH_BY_KEY[key].build(start, setup.values[key])
    except ValidationError:
        return setup.preview(key, start)
    return m.words.item(item).text


@solara.component
def PolicyCard(setup: PolicySetup, model: solara.Reactive[ClassroomModel]):
    """Policy switches for the start of the run; they apply when Reset is pressed."""
    _, set_version = solara.use_state(0)
    start = model.value.spec.start

    def changed():
        set_version(lambda v: v + 1)

    with solara.Card("Policies from the start (apply with Reset)", style=CARD_STYLE):
        for sw in setup.switches:
            on = setup.on[sw.key]

            def toggle(v, key=sw.key):
                setup.set_on(key, v)
                changed()

            solara.Switch(label=sw.title, value=on, on_value=toggle, classes=[f"ree-switch-{sw.key}"])
            if on:
                with solara.Column(style={"padding-left": "16px", "gap": "0"}):
                    solara.Text(switch_preview(setup, sw.key, start, model.value),
                                style={"font-size": "0.8em", "color": "#1f5fa8"})
                    for c in sw.controls():
                        def set_value(v, key=sw.key, name=c.name):
                            setup.set_value(key, name, v)
                            changed()

                        ControlInput(c, setup.values[sw.key][c.name], set_value)
