"""The supply-network map: sites and routes laid out from the world's coordinates, in three windows.

Drawn from a :class:`NetworkView` (a read-only snapshot of the route network built by
:func:`ui.panels.network_view`), never from the live model. Sites, labels and legends are drawn once;
each frame only restyles the routes and composites them between the two static layers.
"""

from __future__ import annotations

import io
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from ui.charts import DPI, PNG_COMPRESSION, LiveChart
from ui.projects import PHASES


@dataclass(frozen=True)
class NetworkView:
    """What the map needs from the route network this week (built by :func:`ui.panels.network_view`)."""

    pos: dict[str, tuple[float, float]]  # node -> (lon, lat)
    kind: dict[str, str]
    name: dict[str, str]
    country: dict[str, str]
    src: Sequence[str]
    dst: Sequence[str]
    is_open: np.ndarray  # bool per edge
    controller: Sequence[str]
    flow: np.ndarray  # t REO per edge this week
    controller_names: dict[str, str]
    groups: Sequence[str]  # controllers that are armed groups
    date: str
    # plants and followed mines (ui.projects), in a fixed order: (id, node, "plant", "magnet" or "mine"), and each one's
    # phase this week (a key of ui.projects.PHASES)
    facilities: Sequence[tuple[str, str, str]] = ()
    phases: Sequence[str] = ()
    shared_nodes: frozenset[str] = frozenset()  # nodes that also hold sites the map does not mark one by one


NODE_STYLE = {  # kind -> marker, size, face colour, legend label
    "mine_area": ("^", 75, "#8c510a", "mine area"),
    "border": ("D", 30, "#ffffff", "border post"),
    "hub": ("o", 45, "#bbbbbb", "hub"),
    "refinery": ("s", 60, "#35978f", "refinery"),
    "port": ("v", 50, "#9ecae1", "port"),
    "buyer_hub": ("*", 130, "#fee391", "magnet makers"),
}
FACILITY_MARKERS = {"plant": "s", "magnet": "h", "mine": "^"}  # a marked facility's shape; its fill is its phase's colour
FACILITY_GLYPHS = {"plant": "refineries (■)", "magnet": "magnet plants (⬢)", "mine": "mines (▲)"}  # the legend's words
LEGEND_FACE = {"refinery": "#dddddd"}  # the sites legend: a refinery's fill is its plants' phase
LABEL_PRIORITY = ("mine_area", "refinery", "buyer_hub", "port", "hub", "border")
# windows, (lon min, lon max, lat min, lat max): the Kachin mines and the Myanmar-China border posts;
# Myanmar, Yunnan, Laos and Thailand (the Northern Mineral Corridor). The third window is the world.
KACHIN_BOX = (97.05, 99.2, 23.95, 26.35)
CORRIDOR_BOX = (96.6, 104.3, 12.5, 26.6)
CHINA_RED = "#c0392b"
GROUP_COLOURS = ["#ff7f00", "#e7298a", "#ffd92f", "#a65628"]  # armed groups: orange, magenta, ...
STATE_COLOURS = ["#1f78b4", "#33a02c", "#8c6d31", "#17becf", "#a6cee3", "#b2df8a", "#636363", "#6b6ecf",
                 "#bdbdbd", "#637939", "#3182bd"]  # other states: blues, greens, greys (no reds or oranges)
Box = tuple[float, float, float, float]


def facility_legend_title(view: NetworkView) -> str:
    """'Refineries (■) and mines (▲) by status', naming only the kinds of facility the map marks."""
    kinds = [FACILITY_GLYPHS[k] for k in FACILITY_MARKERS if any(f[2] == k for f in view.facilities)]
    words = ", ".join(kinds[:-1]) + (" and " if len(kinds) > 1 else "") + kinds[-1]
    return words[0].upper() + words[1:] + " by status"


def short_name(name: str) -> str:
    """'Pangwa / Chipwi mining area, Kachin' -> 'Pangwa' (labels on the map)."""
    s = re.split(r" / |, | \(", name)[0]
    for suffix in (" mining area", " border post", " port"):
        s = s.removesuffix(suffix)
    return s


def _world_lon(lon: float) -> float:
    """Asia-centred longitude: the Americas sit east of the Pacific."""
    return lon + 360.0 if lon < -30.0 else lon


def controller_colours(controllers: Sequence[str], groups: Sequence[str]) -> dict[str, str]:
    """China red, armed groups in warm saturated colours, other states in the rest (stable order)."""
    out: dict[str, str] = {}
    present = list(dict.fromkeys(controllers))
    for i, c in enumerate(sorted(c for c in present if c in groups)):
        out[c] = GROUP_COLOURS[i % len(GROUP_COLOURS)]
    if "CN" in present:
        out["CN"] = CHINA_RED
    for i, c in enumerate(sorted(c for c in present if c not in groups and c != "CN")):
        out[c] = STATE_COLOURS[i % len(STATE_COLOURS)]
    return out


def _inside(p: tuple[float, float], box: Box) -> bool:
    return box[0] <= p[0] <= box[1] and box[2] <= p[1] <= box[3]


def _exit_point(a: tuple[float, float], b: tuple[float, float], box: Box) -> tuple[float, float]:
    """Where the segment from ``a`` (inside the box) to ``b`` (outside) leaves the box."""
    t_exit = 1.0
    for k, (lo, hi) in enumerate(((box[0], box[1]), (box[2], box[3]))):
        d = b[k] - a[k]
        if d > 0:
            t_exit = min(t_exit, (hi - a[k]) / d)
        elif d < 0:
            t_exit = min(t_exit, (lo - a[k]) / d)
    return a[0] + t_exit * (b[0] - a[0]), a[1] + t_exit * (b[1] - a[1])


class _Window:
    """One map window: a box in (lon, lat) drawn into an axes of known size, with a label placer."""

    # candidate label positions around a point: (dx, dy) in points, horizontal and vertical alignment
    SPOTS = ((6, 0, "left", "center"), (-6, 0, "right", "center"), (0, 6, "center", "bottom"),
             (0, -6, "center", "top"), (5, 4, "left", "bottom"), (5, -4, "left", "top"),
             (-5, 4, "right", "bottom"), (-5, -4, "right", "top"))

    def __init__(self, ax, box: Box, size_in: tuple[float, float], world: bool):
        self.ax, self.box, self.world = ax, box, world
        self.sx = size_in[0] * 72 / (box[1] - box[0])  # points per degree
        self.sy = size_in[1] * 72 / (box[3] - box[2])
        self.taken: list[tuple[float, float, float, float]] = []

    def xy(self, lonlat: tuple[float, float]) -> tuple[float, float]:
        return (_world_lon(lonlat[0]), lonlat[1]) if self.world else lonlat

    def pt(self, p: tuple[float, float]) -> tuple[float, float]:
        return (p[0] - self.box[0]) * self.sx, (p[1] - self.box[2]) * self.sy

    def block(self, p: tuple[float, float], r: float = 4.5) -> None:
        x, y = self.pt(p)
        self.taken.append((x - r, y - r, x + r, y + r))

    def label(self, text: str, p: tuple[float, float], fontsize: float, **kw):
        """Put ``text`` next to ``p`` where it overlaps nothing placed so far; None if there is no room."""
        x, y = self.pt(p)
        w, h = 0.56 * fontsize * len(text), 1.2 * fontsize
        W, H = (self.box[1] - self.box[0]) * self.sx, (self.box[3] - self.box[2]) * self.sy
        for dx, dy, ha, va in self.SPOTS:
            x0 = x + dx - {"left": 0.0, "right": w, "center": w / 2}[ha]
            y0 = y + dy - {"bottom": 0.0, "top": h, "center": h / 2}[va]
            r = (x0, y0, x0 + w, y0 + h)
            if r[0] < 1 or r[1] < 1 or r[2] > W - 1 or r[3] > H - 1:
                continue
            if any(r[0] < t[2] and t[0] < r[2] and r[1] < t[3] and t[1] < r[3] for t in self.taken):
                continue
            self.taken.append(r)
            return self.ax.annotate(text, p, xytext=(dx, dy), textcoords="offset points", fontsize=fontsize,
                                    ha=ha, va=va, zorder=6, **kw)
        return None


SHARED_MAPS = 256  # maps kept for reuse among pages (~60 KB each)
_SHARED: OrderedDict[tuple, bytes] = OrderedDict()
_SHARED_LOCK = threading.Lock()
SHARED_LAYERS = 8  # static map layers kept (one per world and set of route controllers)
_LAYERS: OrderedDict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()
_DRAWING: dict[tuple, threading.Event] = {}  # maps being drawn, set when done
DRAW_WAIT_S = 10.0  # a page waiting for another's drawing draws its own after this


class MapChart(LiveChart):
    """The supply network laid out from the world's coordinates, in three windows: the Kachin mines and
    the border posts into Yunnan; Myanmar-Laos-Thailand (the Northern Mineral Corridor); the world.

    Route width grows with this week's ore flow (t REO; the Kachin window prints the tonnes crossing each
    border); closed routes are dashed; colour says who controls the route (China red, armed groups orange
    and purple). Each window's horizontal scale is shrunk by cos(latitude), like a map. Every plant (square)
    and followed mine (triangle) is marked at its site, one marker each, filled with the colour of its phase
    (:data:`ui.projects.PHASES`: planned ... operating, no feed, cancelled), with the legend along the
    bottom. Sites, labels and legends are drawn once; each frame only restyles the routes and refills the
    facilities' markers (``update``)."""

    STRIP = 0.6  # the phases' legend, under the windows (inches)
    W, H = 10.5, 4.5 + STRIP

    def __init__(self, view: NetworkView):
        self.key = self.structure(view)
        self.colours = controller_colours(view.controller, view.groups)
        W, H = self.W, self.H
        self.fig = fig = Figure(figsize=(W, H), dpi=DPI)
        FigureCanvasAgg(fig)
        top, bottom, gap = 0.28, 0.06 + self.STRIP, 0.12
        self.marks: list[tuple[object, list[int]]] = []  # facilities' markers: (scatter, facility indices)
        self.facility_at: dict[str, list[int]] = {}
        for k, (_, node, _) in enumerate(view.facilities):
            self.facility_at.setdefault(node, []).append(k)
        h = H - top - bottom

        def width_for(box: Box, height: float) -> float:
            coslat = np.cos(np.radians((box[2] + box[3]) / 2))
            return height * (box[1] - box[0]) * coslat / (box[3] - box[2])

        k_w, c_w = width_for(KACHIN_BOX, h), width_for(CORRIDOR_BOX, h)
        lons = [_world_lon(p[0]) for p in view.pos.values()]
        lats = [p[1] for p in view.pos.values()]
        world_box = (min(lons) - 8, max(lons) + 8, min(lats) - 6, max(lats) + 6)
        x_w = 0.05 + k_w + gap + c_w + gap
        w_w = W - x_w - 0.05
        w_h = w_w * (world_box[3] - world_box[2]) / (world_box[1] - world_box[0])
        ax_k = fig.add_axes((0.05 / W, bottom / H, k_w / W, h / H))
        ax_c = fig.add_axes(((0.05 + k_w + gap) / W, bottom / H, c_w / W, h / H))
        ax_w = fig.add_axes((x_w / W, (H - top - w_h) / H, w_w / W, w_h / H))
        self.windows = [_Window(ax_k, KACHIN_BOX, (k_w, h), False), _Window(ax_c, CORRIDOR_BOX, (c_w, h), False),
                        _Window(ax_w, world_box, (w_w, w_h), True)]
        self.routes: list[LineCollection] = []
        self.flow_labels: list[tuple[int, object]] = []
        self.top: list = []  # sites and their labels: drawn once, laid over the routes each frame
        for win, skip, fontsize in zip(self.windows, (None, KACHIN_BOX, CORRIDOR_BOX), (7.5, 7.0, 6.5), strict=True):
            self._build_window(win, view, skip, fontsize, flow_labels=win is self.windows[0])
        _outline(ax_c, KACHIN_BOX)
        _outline(ax_w, CORRIDOR_BOX)
        titles = [self._title(ax_k, "Kachin mines → border posts → Yunnan"), self._title(ax_c, "The Northern Corridor")]
        self.title = self._title(ax_w, "")

        handles = [Line2D([], [], color=c, linewidth=3, label=view.controller_names.get(k, k).split(" (")[0])
                   for k, c in self.colours.items()]
        handles.append(Line2D([], [], color="#555555", linewidth=1.6, linestyle=(0, (3, 2)), label="route closed"))
        kinds = [Line2D([], [], marker=m, linestyle="", markersize=7, markerfacecolor=LEGEND_FACE.get(k, f),
                        markeredgecolor="#333333", label=lab) for k, (m, _, f, lab) in NODE_STYLE.items()]
        legend_top = (H - top - w_h - 0.12) / H
        fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(x_w / W, legend_top), ncol=2, fontsize=7,
                   frameon=False, handlelength=1.8, columnspacing=1.0, title="route controlled by",
                   title_fontsize=7.5, alignment="left")
        fig.legend(handles=kinds, loc="upper right", bbox_to_anchor=(1.0, legend_top), ncol=1, fontsize=7,
                   frameon=False, title="sites", title_fontsize=7.5, alignment="left")
        if view.facilities:
            phases = [Line2D([], [], marker="s", linestyle="", markersize=11, markerfacecolor=ph.colour,
                             markeredgecolor="#222222", markeredgewidth=1.0, label=ph.label) for ph in PHASES.values()]
            fig.legend(handles=phases, loc="lower left", bbox_to_anchor=(0.05 / W, 0.02 / H), ncol=len(phases),
                       fontsize=10, frameon=False, handlelength=1.0, handletextpad=0.4, columnspacing=1.3,
                       title=facility_legend_title(view), title_fontsize=10.5, alignment="left")
        self.bottom = [fig.patch, *fig.legends, *titles]
        for ax in fig.axes:
            self.bottom += [ax.patch, *ax.spines.values(), *ax.lines]
        self._layers: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        # what the static layers show: the structure, where the sites are and their names
        self.layer_key = (self.key, tuple(sorted(view.pos.items())), tuple(sorted(view.name.items())),
                          tuple(sorted(view.kind.items())), tuple(view.groups))
        self._look: tuple = ()

    def _title(self, ax, text: str):
        x0, _, _, y1 = ax.get_position().extents
        return self.fig.text(x0, y1 + 0.05 / self.H, text, fontsize=9, ha="left", va="bottom")

    def _draw_only(self, visible: list) -> np.ndarray:
        """Draw with only ``visible`` (of the three layers) shown; the canvas as an RGBA array copy."""
        dynamic = self._dynamic()
        shown = {id(a) for a in visible}
        for a in (*self.bottom, *self.top, *dynamic):
            a.set_visible(id(a) in shown)
        self.fig.canvas.draw()
        out = np.array(self.fig.canvas.buffer_rgba(), dtype=np.float32)
        for a in (*self.bottom, *self.top, *dynamic):
            a.set_visible(True)
        return out

    def _dynamic(self) -> list:
        """What changes from frame to frame: routes, border tonnages, the date, the facilities' markers."""
        return [*self.routes, *(t for _, t in self.flow_labels), self.title, *(sc for sc, _ in self.marks)]

    def png(self) -> bytes:
        """The map as PNG bytes, shared with every page of this server that shows the same map (the same
        world, route styles, tonnages and date: a class playing the same run draws each week once)."""
        key = (self.key, self._look)
        with _SHARED_LOCK:
            data = _SHARED.get(key)
            if data is not None:
                _SHARED.move_to_end(key)
                return data
            drawing = _DRAWING.get(key)  # pages in step ask for the same week at once: one draws it
            if drawing is None:
                _DRAWING[key] = threading.Event()
        if drawing is not None:
            drawing.wait(DRAW_WAIT_S)
            with _SHARED_LOCK:
                data = _SHARED.get(key)
            if data is not None:
                return data
        try:
            data = self._png()
            with _SHARED_LOCK:
                _SHARED[key] = data
                while len(_SHARED) > SHARED_MAPS:
                    _SHARED.popitem(last=False)
        finally:
            if drawing is None:
                with _SHARED_LOCK:
                    _DRAWING.pop(key).set()
        return data

    def _png(self) -> bytes:
        """Only the routes, the border tonnages and the date are drawn each frame; the background (frames,
        legends) and the sites with their labels are drawn once and composited around them."""
        if self._layers is None:  # the same for every page of this world: drawn once per server (~9 MB)
            with _SHARED_LOCK:
                self._layers = _LAYERS.get(self.layer_key)
            if self._layers is None:
                bottom = self._draw_only(self.bottom)[..., :3]
                top = self._draw_only(self.top)
                a = top[..., 3:4] / 255.0
                self._layers = (bottom, top[..., :3] * a, 1.0 - a)
                for layer in self._layers:
                    layer.setflags(write=False)
                with _SHARED_LOCK:
                    _LAYERS[self.layer_key] = self._layers
                    while len(_LAYERS) > SHARED_LAYERS:
                        _LAYERS.popitem(last=False)
        bottom, top_premul, top_keep = self._layers
        dyn = self._draw_only(self._dynamic())
        a = dyn[..., 3:4] / 255.0
        out = dyn[..., :3] * a + bottom * (1.0 - a)
        out = top_premul + out * top_keep
        img = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")
        buf = io.BytesIO()
        img.save(buf, format="png", compress_level=PNG_COMPRESSION)
        return buf.getvalue()

    @staticmethod
    def structure(view: NetworkView) -> tuple:
        """What the static layer depends on: a new controller (a seizure) means a new legend; the plants and
        mines marked one by one are placed once."""
        return (tuple(sorted(set(view.controller))), tuple(view.src), tuple(view.dst), tuple(view.facilities),
                tuple(sorted(view.shared_nodes)))

    def _build_window(self, win: _Window, view: NetworkView, skip: Box | None, fontsize: float,
                      flow_labels: bool) -> None:
        ax, box = win.ax, win.box
        segs = [(win.xy(view.pos[a]), win.xy(view.pos[b])) for a, b in zip(view.src, view.dst, strict=True)]
        routes = LineCollection(segs, zorder=2, capstyle="round")
        ax.add_collection(routes)
        self.routes.append(routes)
        nodes = [n for n in view.pos if _inside(win.xy(view.pos[n]), box)]
        # a refinery's plants are all marked one by one, and so are the mines of a mine area that holds no
        # other sites: such a node shows only its facilities' markers
        covered = {n for n in nodes if n in self.facility_at and (
            view.kind[n] == "refinery" or (view.kind[n] == "mine_area" and n not in view.shared_nodes))}
        self._place_facilities(win, view, [n for n in nodes if n in self.facility_at], covered)
        for kind, (marker, size, face, _) in NODE_STYLE.items():
            pts = [win.xy(view.pos[n]) for n in nodes if view.kind[n] == kind and n not in covered]
            if pts:
                self.top.append(ax.scatter([p[0] for p in pts], [p[1] for p in pts], marker=marker,
                                           s=size * (0.5 if win.world else 1.0), c=face, edgecolors="#333333",
                                           linewidths=0.8, zorder=3))
        for n in nodes:
            win.block(win.xy(view.pos[n]))
        if flow_labels:  # tonnes crossing each border this week
            for i, (a, b) in enumerate(zip(view.src, view.dst, strict=True)):
                pa, pb = view.pos[a], view.pos[b]
                if view.country[a] != view.country[b] and _inside(pa, box) and _inside(pb, box):
                    mid = ((pa[0] + pb[0]) / 2, (pa[1] + pb[1]) / 2)
                    win.block(mid, 9)
                    text = ax.annotate("", mid, fontsize=fontsize - 0.5, ha="center", va="center", zorder=7,
                                       bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})
                    self.flow_labels.append((i, text))
        for n in sorted(nodes, key=lambda n: (LABEL_PRIORITY.index(view.kind[n]), n)):
            if skip is None or not _inside(view.pos[n], skip):
                self.top.append(win.label(short_name(view.name[n]), win.xy(view.pos[n]), fontsize, color="#111111"))
        if not win.world:
            for (ex, ey, out), names in _exits(win, view).items():
                self.top.append(win.label(
                    ("to " if out else "from ") + ", ".join(dict.fromkeys(names)), (ex, ey), fontsize - 0.5,
                    color="#444444", style="italic",
                    bbox={"boxstyle": "round,pad=0.1", "fc": "#f4f7fb", "ec": "none", "alpha": 0.8}))
        self.top = [a for a in self.top if a is not None]
        ax.set_xlim(box[0], box[1])
        ax.set_ylim(box[2], box[3])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_facecolor("#f4f7fb")

    def _place_facilities(self, win: _Window, view: NetworkView, nodes: list[str], covered: set[str]) -> None:
        """One marker per facility, side by side at its site (centred on a covered node, else to the right of
        its marker); their fills are set each frame."""
        size, step = (46, 7.5) if win.world else (80, 10.0)
        spots: dict[str, list[tuple[tuple[float, float], int]]] = {k: [] for k in FACILITY_MARKERS}
        for n in nodes:
            idx = self.facility_at[n]
            x0, y0 = win.xy(view.pos[n])
            first = -(len(idx) - 1) / 2 if n in covered else 1.0
            for j, k in enumerate(idx):
                p = (x0 + (first + j) * step / win.sx, y0)
                win.block(p, step / 2 + 1)
                spots[view.facilities[k][2]].append((p, k))
        for kind, pts in spots.items():
            if pts:
                sc = win.ax.scatter([p[0] for p, _ in pts], [p[1] for p, _ in pts], marker=FACILITY_MARKERS[kind],
                                    s=size * (1.15 if kind == "mine" else 1.0), c="#ffffff", edgecolors="#222222",
                                    linewidths=0.9, zorder=4)
                self.marks.append((sc, [k for _, k in pts]))

    def update(self, view: NetworkView) -> MapChart:
        fmax = max(float(np.max(view.flow)) if len(view.flow) else 0.0, 1.0)
        is_open = np.asarray(view.is_open, dtype=bool)
        share = np.sqrt(np.clip(view.flow, 0.0, None) / fmax)
        rgba = np.array([to_rgba(self.colours.get(c, "#777777")) for c in view.controller])
        rgba[:, 3] = np.where(is_open & (view.flow <= 0), 0.4, 0.9)
        styles = ["solid" if o else (0, (3, 2)) for o in is_open]
        for win, routes in zip(self.windows, self.routes, strict=True):
            w_max, w_min = (3.5, 0.6) if win.world else (7.5, 0.9)
            routes.set_linewidths(np.where(is_open, w_min + w_max * share, 1.6))
            routes.set_color(rgba)
            routes.set_linestyles(styles)
        for i, text in self.flow_labels:
            text.set_text(f"{view.flow[i]:.0f} t/wk" if is_open[i] else "closed")
        self.title.set_text(f"The world, week of {view.date}")
        for sc, idx in self.marks:
            sc.set_facecolor([PHASES[view.phases[k]].colour for k in idx])
        # everything the routes' layer shows: a page with the same look and structure can reuse the PNG
        self._look = (np.round(share, 2).tobytes(), is_open.tobytes(), rgba.round(3).tobytes(), tuple(view.controller),
                      tuple(t.get_text() for _, t in self.flow_labels), self.title.get_text(),
                      tuple(sorted(view.pos.items())), tuple(view.phases))
        return self


def _exits(win: _Window, view: NetworkView) -> dict[tuple[float, float, bool], list[str]]:
    """Routes leaving a window: {(exit point, outward): [names of the far ends]}."""
    box = win.box
    exits: dict[tuple[float, float, bool], list[str]] = {}
    for a, b in zip(view.src, view.dst, strict=True):
        pa, pb = win.xy(view.pos[a]), win.xy(view.pos[b])
        ins_a, ins_b = _inside(pa, box), _inside(pb, box)
        if ins_a == ins_b:
            continue
        inner, outer, far = (pa, pb, b) if ins_a else (pb, pa, a)
        ex, ey = _exit_point(inner, outer, box)
        tol = 0.06 * (box[3] - box[2])  # routes leaving close together share one label
        key = next((k for k in exits if abs(k[0] - ex) < tol and abs(k[1] - ey) < tol and k[2] == ins_a),
                   (ex, ey, ins_a))
        exits.setdefault(key, []).append(short_name(view.name[far]))
    return exits


def _outline(ax, box: Box) -> None:
    x0, x1, y0, y1 = box
    ax.plot([x0, x1, x1, x0, x0], [y0, y0, y1, y1, y0], color="#555555", linewidth=0.8, linestyle=":", zorder=1)


def network_map(view: NetworkView) -> Figure:
    return MapChart(view).update(view).fig
