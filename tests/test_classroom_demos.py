"""The README's classroom demos, replayed as a teacher plays them on the page (issue 15 item 6).

Each demo of README.md's "Classroom guide" (``### Demo 1 — ...`` to ``### Demo 3 — ...``) is replayed through
the page's own model class, :class:`ui.session.ClassroomModel`: the demo's scenario, seed 0, its buttons
pressed through :meth:`~ui.session.ClassroomModel.intervene` (found by their labels on the page,
:data:`ui.session.INTERVENTIONS`), :meth:`~ui.session.ClassroomModel.fund` and
:meth:`~ui.session.ClassroomModel.end_item`, and Step / Play in frames of the page's default *Weeks per Step*
(:data:`ui.config.RENDER_INTERVAL`, 5 weeks: "Step twice" is 10 weeks, "Play about 10 weeks" two frames).
Every number the demo text quotes is then checked against what the page shows: the charts' series
(:class:`ui.history.History`, as the page reads them), the map (:func:`ui.panels.network_view`), the event log
in words (``model.told``) and the project phases (:mod:`ui.projects`).

**Where the expected numbers come from: the README itself.** Each claim is a regular expression over the
demo's text (whitespace collapsed, Markdown ``*`` removed) whose named groups capture the numbers, dates,
button labels and event texts; the test then checks the measured value against the captured one, to the
rounding the text uses (:func:`close`: "+53 %" to the percent, "×1.4" to a tenth, "1,100 t" to the hundred;
:func:`about`: "about US$245" within 3 %). So README and test cannot drift: a number edited in the README is
checked as edited, and a sentence rewritten so that its claim no longer matches fails loudly ("README Demo 2
no longer says ...") instead of silently testing an old copy. Constants in this file would have needed a
second edit for every re-measurement and could go stale beside a correct README; parsing costs a regex per
claim, which also documents which words each number belongs to. Where the README leaves a choice (how long
to play after the last press), the replay's choice is said at that place.

Each demo is one run of the model (Demo 3: 250 weeks), about 1 s each; with the two short runs of Demo 2's
last steps and Demo 3's other way to fund, the runs take ~5 s (the file ~11 s with its imports).
"""

from __future__ import annotations

import calendar
import datetime as dt
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from ui import projects
from ui.config import RENDER_INTERVAL
from ui.history import History
from ui.panels import network_view
from ui.session import INTERVENTIONS, LENDERS, ClassroomModel

README = Path(__file__).resolve().parents[1] / "README.md"
WEEKS_PER_STEP = RENDER_INTERVAL  # the page's default "Weeks per Step" (and per frame of Play)
WORDS = {"once": 1, "twice": 2, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
         "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
         "fifteen": 15}
MONTHS = {name: k for k, name in enumerate(calendar.month_name) if name}
ABOUT = 0.03  # "about X": within 3 % of X (or X's own rounding, if wider)


# ================================================================================================ README text
def demo_text(n: int) -> str:
    """Demo ``n``'s subsection, from its ``### Demo n`` heading to the next heading, whitespace collapsed and
    Markdown emphasis (``*``) removed."""
    text = README.read_text()
    start = re.search(rf"^### Demo {n} —.*$", text, re.M)
    assert start, f"README.md has no '### Demo {n} — ...' heading"
    end = re.compile(r"^#{2,3} ", re.M).search(text, start.end())
    body = text[start.start():end.start() if end else len(text)]
    return re.sub(r"\s+", " ", body.replace("*", "")).strip()


def claim(n: int, pattern: str) -> dict[str, str]:
    """The named groups of ``pattern`` in Demo ``n``'s text; fails, naming the claim, if the README no longer
    says it (rewrite the pattern to the new sentence and check the new claim)."""
    found = re.search(pattern, demo_text(n))
    if found is None:
        pytest.fail(f"README Demo {n} no longer says {pattern!r}: re-measure and update its claim here")
    return found.groupdict()


def num(s: str) -> float:
    return float(s.replace(",", ""))


def count(s: str) -> int:
    """'six' -> 6, '10' -> 10."""
    return int(s) if s.isdigit() else WORDS[s.lower()]


def close(measured: float, text: str, unit: float | None = None, what: str = "") -> None:
    """``measured`` rounds to the README's ``text``: to its last decimal place by default ("4.2": a tenth,
    "53": a unit), or to ``unit`` where the text rounds to tens or hundreds ("1,100 t")."""
    value = num(text)
    if unit is None:
        unit = 10.0 ** -len(text.split(".")[1]) if "." in text else 1.0
    assert abs(measured - value) <= unit / 2 + 1e-9, f"{what}: README says {text}, the page shows {measured:.4g}"


def about(measured: float, text: str, rel: float = ABOUT, what: str = "") -> None:
    """"about X": within ``rel`` of X, or X's own rounding if that is wider."""
    value = num(text)
    unit = 10.0 ** -len(text.split(".")[1]) if "." in text else 1.0
    assert abs(measured - value) <= max(rel * abs(value), unit / 2), (
        f"{what}: README says about {text}, the page shows {measured:.4g}")


def period(phrase: str, year: int | None = None) -> tuple[dt.date, dt.date]:
    """The days a phrase of the demos names: 'October 2024', 'November', 'early March' (1-10), 'mid-June'
    (11-20), 'end of April' (21-end); ``year`` when the phrase has none."""
    m = re.fullmatch(r"(early |mid-|end of |late )?([A-Z][a-z]+)(?: (\d{4}))?", phrase.strip())
    assert m and m.group(2) in MONTHS, f"not a period: {phrase!r}"
    part, month, y = m.group(1), MONTHS[m.group(2)], int(m.group(3) or year)
    last = calendar.monthrange(y, month)[1]
    first_day, last_day = {None: (1, last), "early ": (1, 10), "mid-": (11, 20), "end of ": (21, last),
                           "late ": (21, last)}[part]
    return dt.date(y, month, first_day), dt.date(y, month, last_day)


def in_period(day: dt.date, phrase: str, year: int | None = None) -> bool:
    a, b = period(phrase, year)
    return a <= day <= b


# ================================================================================================ the replay
def button(label: str) -> tuple[str, bool]:
    """The intervention key behind a button label on the page, and whether it is the toggle's undo."""
    for iv in INTERVENTIONS:
        if label in (iv.label, iv.undo_label):
            return iv.key, label == iv.undo_label
    raise AssertionError(f"no button labelled {label!r} on the page ({[i.label for i in INTERVENTIONS]})")


@dataclass
class Replay:
    """One page's run: Step and Play in frames of the page's Weeks per Step, buttons pressed by label, and
    what the map and the project table show recorded week by week."""

    scenario: str
    m: ClassroomModel = field(init=False)
    h: History = field(init=False)
    crossings: list[np.ndarray] = field(default_factory=list)  # tonnes the map prints at each border post
    posts_open: list[np.ndarray] = field(default_factory=list)  # and whether it is open (else dashed, "closed")
    facilities: list[dict[str, projects.Facility]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.m = ClassroomModel(self.scenario, 0)
        self.h = History().update(self.m)
        self.view = network_view(self.m)
        # the Kachin border posts into Yunnan: the routes from Myanmar into China the map labels with tonnes
        v = self.view
        self.posts = [i for i, (a, b) in enumerate(zip(v.src, v.dst, strict=True))
                      if v.country[a] == "MM" and v.country[b] == "CN" and "Yunnan" in v.name[b]]
        self._record()

    def _record(self) -> None:
        self.view = network_view(self.m)
        self.crossings.append(self.view.flow[self.posts].copy())
        self.posts_open.append(np.asarray(self.view.is_open, dtype=bool)[self.posts])
        self.facilities.append({f.id: f for f in projects.facilities(self.m, self.m.watch)})

    @property
    def week(self) -> int:
        return int(self.m.steps)

    def step(self, frames: int = 1) -> Replay:
        """Step (or one frame of Play) ``frames`` times."""
        for _ in range(frames * WEEKS_PER_STEP):
            self.m.step()
            self._record()
        assert self.m.error is None, self.m.error
        self.h.update(self.m)
        return self

    def play_until(self, done, max_weeks: int = 520) -> Replay:
        """Play, frame by frame, and pause at the first frame where ``done(self)`` holds."""
        start = self.week
        while not done(self):
            assert self.week - start < max_weeks, "played too long"
            self.step()
        return self

    def press(self, label: str) -> int:
        """Press the button labelled ``label``; returns the week it was pressed in."""
        key, undo = button(label)
        assert self.m.intervene(key, on=not undo), f"{label!r} did nothing"
        return self.week

    # -- what the page shows -------------------------------------------------------------------------------
    def s(self, variable: str, region: str = "", product: str = "") -> np.ndarray:
        return self.h.series(variable, region, product)

    def price(self, product: str, region: str = "CN") -> np.ndarray:
        return self.s("price", region, product)

    def ratio(self, product: str) -> np.ndarray:
        """ex-China / China-domestic, as the price table shows it."""
        return self.price(product, "ROW") / self.price(product, "CN")

    def date(self, week: int) -> dt.date:
        return self.h.dates[week]

    def first_week_in(self, phrase: str, year: int | None = None) -> int:
        a, b = period(phrase, year)
        return next(k for k, d in enumerate(self.h.dates) if a <= d <= b)

    def told(self, start: str):
        """The event-log entries (in words) that begin with ``start``."""
        return [t for t in self.m.told if t.text.startswith(start)]

    def event_week(self, start: str) -> int:
        found = self.told(start)
        assert found, f"the event log never shows {start!r}"
        return found[0].week

    def flow(self) -> np.ndarray:
        """The Myanmar ore-flow panel's stack height: every route's flow."""
        return sum(self.h.series("myanmar_ore_flow", c, fill=0.0) for c in self.h.regions("myanmar_ore_flow"))


# ================================================================================================ Demo 1
@dataclass
class Demo1:
    r: Replay
    seized: int  # the week the event log shows the first seizure (the first pause)
    road_before: str  # who controls the Pangwa -> Pianma road at the start, and at that pause
    road_after: str
    halt: int  # the week the halt begins (the second pause is at the frame that shows it)


@pytest.fixture(scope="module")
def demo1() -> Demo1:
    setup = claim(1, r"Setup: scenario `(?P<sc>\w+)`, seed 0, Reset\.")
    first = claim(1, r"Press ▶ and pause when the event log shows (?P<event>[^()]+?) \(")
    then = claim(1, r"Play on to \w+ \d{4} \((?P<event>[^;]+);")
    r = Replay(setup["sc"])
    road = next(i for i, (a, b) in enumerate(zip(r.view.src, r.view.dst, strict=True))
                if "Pangwa" in r.view.name[a] and "Pianma" in r.view.name[b])
    before = r.view.controller[road]
    r.play_until(lambda x: bool(x.told(first["event"])))
    seized, after = r.week, r.view.controller[road]
    r.play_until(lambda x: bool(x.told(then["event"])))
    halt = r.event_week(then["event"])
    r.play_until(lambda x: x.date(x.week) >= dt.date(2025, 6, 20))  # on to the demo's last date, early June
    return Demo1(r, seized, before, after, halt)


def test_demo1_the_seizures_and_the_road_that_changes_hands(demo1):
    r = demo1.r
    c = claim(1, r"pause when the event log shows (?P<event>[^()]+?) \((?P<when>\w+ \d{4})\)")
    (told,) = r.told(c["event"])
    assert in_period(told.date, c["when"]), told.date
    assert demo1.seized - WEEKS_PER_STEP < told.week <= demo1.seized, "Play pauses at the frame that shows it"
    c = claim(1, r"changes colour, from magenta \((?P<before>[^,]+), the junta-allied Border Guard Force\) to "
                 r"orange \((?P<after>[^)]+)\)")
    names = {a.gid: a.name for a in r.m.armed_groups}
    assert names[demo1.road_before].startswith(c["before"]) and names[demo1.road_after] == c["after"]
    c = claim(1, r"Kanpaiti follows in (?P<when>[A-Z][a-z]+)\.")
    (kanpaiti,) = [t for t in r.m.told if "seizes the Kanpaiti mining area" in t.text]
    assert in_period(kanpaiti.date, c["when"], told.date.year)


def test_demo1_the_halt_empties_the_roads(demo1):
    r = demo1.r
    c = claim(1, r"Play on to (?P<when>\w+ \d{4}) \((?P<event>The [^;]+ halts mining at (?P<pct>\d+)% of its "
                 r"sites)")
    (told,) = r.told(c["event"])
    assert told.text == c["event"] + "." and in_period(told.date, c["when"])
    halt = told.week
    c = claim(1, r"drops from about (?P<before>[\d,]+) t a week to under (?P<under>\d+) until (?P<until>early "
                 r"[A-Z][a-z]+), and the border posts on the map read at most about (?P<most>\d+) t/wk each, "
                 r"often none")
    flow = r.flow()
    about(statistics.median(flow[halt - 12:halt]), c["before"], what="ore flow before the halt")
    end = max(k for k, d in enumerate(r.h.dates) if in_period(d, c["until"], told.date.year))
    assert flow[halt:end + 1].max() < num(c["under"]), flow[halt:end + 1].round()
    assert flow[end + 1] >= num(c["under"]), "the flow comes back after early May"
    posts = np.array(r.crossings[halt:end + 1])
    assert posts.max() <= num(c["most"]) * 1.05, posts.round()  # a round hundred: "about" within 5 %
    assert (posts < 0.5).mean() >= 0.25, f"'often none' (the map prints 0 t/wk): {posts.round()}"


def test_demo1_prices(demo1):
    r = demo1.r
    halt = demo1.halt
    base = halt - 1  # the last week before the halt
    year = r.date(halt).year
    c = claim(1, r"China-domestic Dy from about US\$(?P<base>\d+) to (?P<by>\d+) by (?P<when>early [A-Z][a-z]+) "
                 r"and a peak of (?P<peak>\d+) \(\+(?P<pct>\d+) %\) when mining resumes at the (?P<resume>end of "
                 r"[A-Z][a-z]+)")
    dy = r.price("Dy")
    about(dy[base], c["base"], what="Dy before the halt")
    march = r.first_week_in(c["when"], year)
    close(dy[march], c["by"], what=f"Dy on {r.date(march)}")
    window = slice(halt, halt + 20)
    peak = halt + int(np.argmax(dy[window]))
    close(dy[peak], c["peak"], what="Dy's peak")
    close(100 * (dy[peak] / dy[base] - 1), c["pct"], what="Dy's rise")
    resumes = r.event_week("Mining resumes")
    assert peak == resumes and in_period(r.date(peak), c["resume"], year), (r.date(peak), r.date(resumes))
    # "Dy and Tb climb in both markets together, week by week" (up to early March)
    assert "Dy and Tb climb in both markets together, week by week" in demo_text(1)
    for p in ("Dy", "Tb"):
        for reg in ("CN", "ROW"):
            assert np.all(np.diff(r.price(p, reg)[base:march + 1]) > 0), (p, reg)
    c = claim(1, r"Tb \+(?P<Tb>\d+) %; NdPr only \+(?P<NdPr>\d+) %")
    for p in ("Tb", "NdPr"):
        x = r.price(p)
        close(100 * (x[window].max() / x[base] - 1), c[p], what=f"{p}'s rise")
    c = claim(1, r"Magnets hardly move: China's NdFeB price rises only \+(?P<pct>\d+) %")
    nd = r.price("NdFeB")
    close(100 * (nd[window].max() / nd[base] - 1), c["pct"], what="NdFeB's rise")
    c = claim(1, r"floods out \((?P<t>[\d,]+) t in the week of (?P<day>\d+ [A-Z][a-z]+)\) and Dy is down to about "
                 r"US\$(?P<back>\d+) by (?P<when>early [A-Z][a-z]+)")
    day = dt.datetime.strptime(f"{c['day']} {year}", "%d %B %Y").date()
    k = r.h.dates.index(day)
    flow = r.flow()
    close(flow[k], c["t"], unit=100, what=f"ore flow in the week of {day}")
    assert flow[k] == flow[halt:].max(), "the flood is the largest week"
    back = r.first_week_in(c["when"], year)
    about(dy[back], c["back"], what="Dy in early June")
    # Why: "China-domestic and ex-China prices move together because nothing stops exports here"
    assert "China-domestic and ex-China prices move together" in demo_text(1)
    # (together: both rise to the peak and fall after it, and ex-China stays within a quarter of China-domestic,
    # where Demo 2's licences make it many times as much; "at most about a tenth above", a fifth of 1.0 +- 0.05)
    c = claim(1, r"it is at most about a (?P<part>fifth|tenth|quarter|third) above China's price")
    part = {"tenth": 0.1, "fifth": 0.2, "quarter": 0.25, "third": 1 / 3}[c["part"]]
    ratio = r.ratio("Dy")[base:k + 1]
    assert ratio.min() > 0.95 and ratio.max() < 1.25, ratio.round(2)
    assert abs(ratio.max() - (1 + part)) <= 0.05, ratio.round(2)
    # "ex-China climbs faster, is near its top by early March and stays there until the flood, then comes down
    # with China's price" (near: within 3 % of its top over the halt, every week from early March to the resumption)
    c = claim(1, r"ex-China climbs faster, is near its top by (?P<when>early [A-Z][a-z]+) and stays there until the "
                 r"flood, then comes down with China's price")
    row = r.price("Dy", "ROW")
    top = row[halt:k + 1].max()
    by = r.first_week_in(c["when"], year)
    assert r.ratio("Dy")[by] > r.ratio("Dy")[base] + 0.03, "climbs faster than China's"
    assert np.all(row[by:resumes + 1] >= 0.97 * top), (row[by:resumes + 1] / top).round(3)
    assert row[by - 1] < 0.97 * top, "not before early March"
    assert row[back] < top * 0.95 and dy[back] < dy[peak] * 0.95 and row[back] < row[k] < row[resumes]


# ================================================================================================ Demo 2
@dataclass
class Demo2:
    r: Replay
    reset_ratio: dict[str, float]  # the price table's ratios at Reset
    licence: int  # the week China licenses Dy/Tb exports is pressed
    played: int  # the week "Play about 10 weeks" pauses at
    release: int  # the week Release stockpiles is pressed
    lift: int  # the week the licences are lifted


@pytest.fixture(scope="module")
def demo2() -> Demo2:
    setup = claim(2, r"Setup: scenario `(?P<sc>\w+)`, seed 0, Reset\.")
    one = claim(2, r"1\. Press Step (?P<n>\w+) \((?P<w>\d+) weeks\), then (?P<button>[^;]+); Step, and the event "
                   r"appears with its date")
    two = claim(2, r"2\. Play about (?P<w>\d+) weeks\.")
    three = claim(2, r"3\. Press (?P<button>.+?) and Step\.")
    four = claim(2, r"4\. Press (?P<button>.+?) and play on to (?P<month>[A-Z][a-z]+) (?P<year>\d{4}): the two prices "
                    r"come back together within about (?P<w>\w+) weeks")
    r = Replay(setup["sc"])
    reset = {p: float(r.m.price("ROW", p) / r.m.price("CN", p)) for p in r.m.products}
    assert count(one["n"]) * WEEKS_PER_STEP == int(one["w"]), "Step twice is 10 weeks"
    r.step(count(one["n"]))
    licence = r.press(one["button"])
    r.step()
    r.step(round(int(two["w"]) / WEEKS_PER_STEP))
    played = r.week
    release = r.press(three["button"])
    r.step()
    lift = r.press(four["button"])
    month = dt.datetime.strptime(four["month"], "%B").month
    r.play_until(lambda x: x.date(x.week) >= dt.date(int(four["year"]), month, 1))
    return Demo2(r, reset, licence, played, release, lift)


def test_demo2_the_price_table_at_reset(demo2):
    # (the oxide world had three oxides, all ~3-4 % dearer outside China; the magnet world sells its ex-China NdPr
    # surplus back to China, at export parity, and its cheap oxides (La, Ce, Sm) pay far more freight per US$)
    c = claim(2, r"Point at the price table: for Dy and Tb, ex-China is about (?P<dytb>\d+) % above China-domestic "
                 r"\(freight, paperwork and the importers' margin\), for NdFeB magnets about (?P<mag>\d+) %\. NdPr is "
                 r"the other way round, about (?P<ndpr>\d+) % below")
    ratio = demo2.reset_ratio
    for p in ("Dy", "Tb"):
        close(100 * (ratio[p] - 1), c["dytb"], what=f"{p} ex-China over China at Reset")
    close(100 * (ratio["NdFeB"] - 1), c["mag"], what="NdFeB ex-China over China at Reset")
    close(100 * (1 - ratio["NdPr"]), c["ndpr"], what="NdPr ex-China under China at Reset")


def test_demo2_licences_split_the_market(demo2):
    r, press = demo2.r, demo2.licence
    (told,) = r.m.class_changes()[:1]
    assert told.week == press + 1 and told.text.startswith("China now requires an export licence")
    c = claim(2, r"For the (?P<review>\w+) weeks of review no licence is valid and importers sell from their "
                 r"stocks, so ex-China Dy climbs every week \(×(?P<r1>[\d.]+) the domestic price after (?P<w1>\w+) "
                 r"weeks, ×(?P<r2>[\d.]+) after (?P<w2>\w+)\); then licences for about (?P<a>\w+) tonnes in "
                 r"(?P<b>\w+) arrive, but the ratio goes on climbing, week after week, to ×(?P<Dy>[\d.]+) for Dy and "
                 r"×(?P<Tb>[\d.]+) for Tb at the pause")
    review = count(c["review"])
    assert f"after a review of {review} weeks" in told.text
    allowed = r.s("export_allowed", "", "Dy")
    start = press + 1
    assert np.all(allowed[start:start + review] == 0) and allowed[start + review] > 0, allowed[start:start + 8]
    row = r.price("Dy", "ROW")
    assert np.all(np.diff(row[press:start + review]) > 0), "ex-China Dy climbs every week of the review"
    ratio = r.ratio("Dy")
    for rk, wk in (("r1", "w1"), ("r2", "w2")):
        close(ratio[press + count(c[wk])], c[rk], what=f"Dy ratio {c[wk]} weeks after the press")
    share = count(c["a"]) / count(c["b"])
    approved = int(re.search(r"about (\d+)% of the tonnes", told.text).group(1))
    assert abs(approved / 100 - share) <= 0.03, approved
    assert abs(allowed[start + review:demo2.played + 1].mean() - share) <= 0.1
    now = demo2.played
    for p in ("Dy", "Tb"):
        close(r.ratio(p)[now], c[p], what=f"{p} ratio")
        assert np.all(np.diff(r.ratio(p)[press:now + 1]) > 0), f"{p}'s ratio climbs every week to the pause"
    c = claim(2, r"That is the ex-China spot price, where only a tonne or two of Dy a week now trades; the rest comes on "
                 r"term contracts, at prices tied to China's \(about US\$(?P<contract>\d+)\)")
    spot = r.s("volume", "ROW", "Dy")[now - WEEKS_PER_STEP:now + 1]
    assert np.all((spot >= 0.5) & (spot < 2.5)), spot.round(2)
    about(r.s("contract_price", "ROW", "Dy")[now], c["contract"], what="Dy's contract price ex-China")
    assert abs(r.s("contract_price", "ROW", "Dy")[now] / r.price("Dy")[now] - 1) < 0.15, "tied to China's"
    assert r.s("contract_volume", "ROW", "Dy")[now] > 0
    c = claim(2, r"so magnets split too: ex-China NdFeB costs ×(?P<mag>[\d.]+) China's\. Buyers outside China are not "
                 r"short yet: they use the magnets they keep in stock \(about (?P<weeks>\d+) weeks' worth\)")
    close(r.ratio("NdFeB")[now], c["mag"], what="NdFeB ratio")
    china = r.m.region_of_state("CN")
    abroad = [st for st in r.h.regions("shortage", "NdFeB") if r.m.region_of_state(st) != china]
    assert abroad and all(np.nansum(r.s("shortage", st, "NdFeB")[press:now + 1]) == 0 for st in abroad)
    stock = r.s("inventory_buyers", "ROW", "NdFeB")
    use = sum(r.s("consumption", st, "NdFeB")[press] for st in abroad)
    close(stock[press] / use, c["weeks"], what="weeks of magnets in stock outside China")
    assert stock[now] < 0.8 * stock[press], "they use it"
    c = claim(2, r"China-domestic Dy falls, from about US\$(?P<a>\d+) to (?P<b>\d+):")
    about(r.price("Dy")[press], c["a"], what="Dy at the press")
    close(r.price("Dy")[now], c["b"], what="Dy after 10 weeks of play")
    c = claim(2, r"shows China's reserve buying the glut \(from about (?P<a>\d+) to (?P<b>\d+) t of Dy\)")
    reserve = r.s("stockpile", "CN", "Dy")
    bought = reserve[start + review:now + 1]  # it buys until it is full (its max_weeks of use), then holds
    assert np.all(np.diff(bought) >= 0), reserve[start:now + 1].round()
    about(bought[0], c["a"], what="China's Dy reserve when the licences arrive")
    about(bought[-1], c["b"], what="China's Dy reserve at the pause")
    c = claim(2, r"NdPr is not controlled and does not split: its ex-China price stays between (?P<lo>\d+) % below and "
                 r"(?P<hi>\d+) % above China's")
    nd = r.ratio("NdPr")[press:now + 1]
    close(100 * (1 - nd.min()), c["lo"], what="NdPr's ex-China price at its lowest under China's")
    close(100 * (nd.max() - 1), c["hi"], what="NdPr's ex-China price at its highest over China's")
    # and never above import parity (freight and the importers' margin: (1 + export cost / price) x (1 + margin),
    # ~4 % at ~US$50/kg), where Dy is x9
    cn = r.price("NdPr")[press:now + 1]
    band = (1.0 + 1.5 / cn) * 1.01  # world_2024_magnets.toml: NdPr export cost US$1.5/kg; import_margin 0.01
    assert np.all(nd <= band + 0.005), (nd.round(3), band.round(3))


def test_demo2_a_reserve_of_a_few_weeks(demo2):
    r, press = demo2.r, demo2.release
    c = claim(2, r"Japan's JOGMEC stock, already drawn down from (?P<start>\d+) to about (?P<now>\d+) t of Dy "
                 r"because it releases into high prices by itself, sells most of what is left: ex-China Dy goes on "
                 r"climbing, \+(?P<pct>\d+) % in the next (?P<w>\w+) weeks")
    jp = r.s("stockpile", "JP", "Dy")
    close(jp[0], c["start"], what="JOGMEC's Dy at the start")
    about(jp[press], c["now"], what="JOGMEC's Dy at the press")
    assert np.all(np.diff(jp[demo2.licence + 3:press + 1]) < 0), "it releases by itself"
    assert r.told("Japan releases its stockpiles")[0].week == press + 1
    after = slice(press + 1, press + WEEKS_PER_STEP + 1)
    assert np.all(np.diff(jp[press:after.stop]) < 0)
    ends = r.told("The order to release the stockpiles of Japan ends")[0].week
    assert jp[ends] < 0.5 * jp[press], "most of what is left"
    row = r.price("Dy", "ROW")
    w = count(c["w"])
    assert np.all(row[press + 1:press + w + 1] > row[press]), "goes on climbing"
    close(100 * (row[press + w] / row[press] - 1), c["pct"], what=f"ex-China Dy {w} weeks after the release")


def test_demo2_lifting_the_licences(demo2):
    r, press = demo2.r, demo2.lift
    c = claim(2, r"the two prices come back together within about (?P<w>\w+) weeks\. But China's domestic Dy does not "
                 r"stop where it was before the controls: its magnet plants run flat out to make the magnets that "
                 r"buyers outside China waited for, and Dy climbs for (?P<months>\w+) months, to a peak of about "
                 r"US\$(?P<peak>\d+) at the (?P<when>end of [A-Z][a-z]+) (?P<year>\d{4}) \(\+(?P<pct>\d+) % on its "
                 r"price before the controls\), and is back near US\$(?P<back>\d+) by (?P<by>mid-[A-Z][a-z]+)")
    assert r.told("China lifts its export controls")[0].week == press + 1
    ratio = r.ratio("Dy")
    together = next(k for k in range(press, r.week + 1) if ratio[k] <= 1.05)  # as before the controls
    assert abs((together - press) - count(c["w"])) <= 2, together - press
    dy = r.price("Dy")
    peak = press + int(np.argmax(dy[press:]))
    about(dy[peak], c["peak"], what="China's Dy after the lift")
    assert in_period(r.date(peak), c["when"], int(c["year"])), r.date(peak)
    assert round((peak - press) * 12 / 52) == count(c["months"]), peak - press
    assert np.all(np.diff(dy[together:peak + 1]) > 0), "it climbs"
    close(100 * (dy[peak] / dy[demo2.licence] - 1), c["pct"], what="Dy's peak over its price before the controls")
    about(dy[r.first_week_in(c["by"], int(c["year"]))], c["back"], what="China's Dy in mid-May")
    out, cap = r.s("magnet_output", "CN", "NdFeB"), r.s("magnet_capacity", "CN", "NdFeB")
    assert out[demo2.licence] < 0.9 * cap[demo2.licence], "not flat out before the controls"
    flat_out = slice(together + WEEKS_PER_STEP, peak + 1)  # from a few weeks after the prices meet, to the peak
    assert np.all(out[flat_out] >= 0.99 * cap[flat_out]), (out / cap)[press:peak + 1].round(2)


def test_demo2_the_scenarios_own_licences_end_the_same_way(demo2):
    c = claim(2, r"In `(?P<sc>\w+)`, where the scenario itself starts the licences \(week (?P<week>\d+)\), the button "
                 r"under the interventions, End: (?P<label>[^,]+), lifts them the same way")
    r = Replay(c["sc"]).play_until(lambda x: x.week >= int(c["week"]))
    (told,) = [t for t in r.m.told if t.text.startswith("China now requires an export licence")]
    assert told.week == int(c["week"]) and told.source == "scenario"
    also = claim(2, r"lifts them the same way \(there they also cover (?P<also>[a-z, ]+), as China's list")["also"]
    assert f"dysprosium, terbium, {also} (oxides" in told.text, told.text
    # held as long as the demo's own licences were (pressed in week 10, lifted in week 30)
    r.step(math.ceil((demo2.lift - demo2.licence) / WEEKS_PER_STEP) - 1)
    (item,) = [x for x in r.m.endable() if r.m.words.item(x).label == c["label"]]
    assert r.m.end_item(item)
    press = r.week
    w = count(claim(2, r"come back together within about (?P<w>\w+) weeks")["w"])
    r.step(math.ceil(2 * w / WEEKS_PER_STEP))
    assert r.m.class_changes()[0].week == press + 1
    ratio = r.ratio("Dy")
    assert ratio[press] > 3
    together = next(k for k in range(press, r.week + 1) if ratio[k] <= 1.05)
    assert abs((together - press) - w) <= 2, together - press


def test_demo2_extension_the_halt_and_the_licences_together():
    c = claim(2, r"Extension: Reset with scenario `(?P<sc>\w+)` and Play to (?P<month>[A-Z][a-z]+) (?P<year>\d{4}): once "
                 r"the Kachin halt and the licences have hit together, the Unmet need panel \(pick (?P<product>\w+)\) shows buyers outside "
                 r"China short of magnets for\s+weeks")
    month = dt.datetime.strptime(c["month"], "%B").month
    r = Replay(c["sc"]).play_until(lambda x: x.date(x.week) >= dt.date(int(c["year"]), month, 1))
    both = max(r.event_week("The Kachin Independence Army halts"), r.event_week("China now requires an export"))
    china = r.m.region_of_state("CN")
    product = c["product"]
    assert r.m.maker_book.magnet_mask[r.m.products.index(product)], f"{product} is not a magnet"
    short = [r.s("shortage", s, product) > 1e-6 for s in r.h.regions("shortage", product)
             if r.m.region_of_state(s) != china]
    assert short and not any(x[:both].any() for x in short), "short only once both have hit"
    runs = [max((len(g) for g in "".join("x" if v else " " for v in x).split()), default=0) for x in short]
    assert max(runs) >= 3, f"short of {product} for weeks: {runs}"


# ================================================================================================ Demo 3
@dataclass
class Demo3:
    r: Replay
    border: int  # the weeks each button was pressed
    corridor: int
    finance: int
    before: float  # Myanmar ore to China the week the border closes
    no_feed: int  # the week the Thai refinery's square first turns red, no feed (Play pauses there)


@pytest.fixture(scope="module")
def demo3() -> Demo3:
    setup = claim(3, r"Setup: scenario `(?P<sc>\w+)`, seed 0, Reset, then Step (?P<n>\w+)\.")
    one = claim(3, r"1\. Press (?P<button>.+?), then Step\.")
    two = claim(3, r"2\. Press (?P<button>.+?) and Step\.")
    three = claim(3, r"3\. Press (?P<button>.+?) \(or pick")
    r = Replay(setup["sc"]).step(count(setup["n"]))
    border = r.press(one["button"])
    before = float(r.s("myanmar_ore_to_china")[border])
    r.step()
    corridor = r.press(two["button"])
    r.step()
    finance = r.press(three["button"])
    r.play_until(lambda x: x.facilities[-1]["th_udon_thani"].phase == "no_feed")
    no_feed = r.week
    r.step(4)  # "Play on: a few weeks later a trickle arrives" (four frames, 20 weeks)
    return Demo3(r, border, corridor, finance, before, no_feed)


def test_demo3_a_closed_border(demo3):
    r, press = demo3.r, demo3.border
    c = claim(3, r"The (?P<n>\w+) border posts into Yunnan turn dashed and read \"closed\"; Myanmar ore to China "
                 r"drops to zero\. Prices move little at first \(\+(?P<p1>[\d.]+) % after (?P<w1>\w+) weeks, "
                 r"\+(?P<p2>[\d.]+) % after (?P<w2>\w+)\)")
    assert len(r.posts) == count(c["n"])
    stepped = press + WEEKS_PER_STEP
    assert r.posts_open[press].all() and not r.posts_open[stepped].any(), "dashed, 'closed' after the Step"
    assert np.all(r.s("myanmar_ore_to_china")[press + 1:stepped + 1] == 0)
    dy = r.price("Dy")
    for p, w in (("p1", "w1"), ("p2", "w2")):
        close(100 * (dy[press + count(c[w])] / dy[press] - 1), c[p], what=f"Dy {c[w]} weeks after the closure")
    assert "the ore waits in yards on the Myanmar side" in demo_text(3)
    mm = [n for n in r.h.regions("ore_stock") if r.view.country.get(n) == "MM"]
    yards = sum(r.s("ore_stock", n) for n in mm)
    assert mm and np.all(np.diff(yards[press:stepped + 1]) > 0), yards[press:stepped + 1]


def test_demo3_a_corridor_that_carries_less(demo3):
    r, press = demo3.r, demo3.corridor
    c = claim(3, r"A northern corridor band appears in the flow panel: Kachin ore goes (?P<path>[^,]+), (?P<t>\d+) t "
                 r"a week, less than half of what crossed before")
    band = r.s("myanmar_ore_flow", "northern_corridor")
    assert np.all(np.nan_to_num(band[:press + 1]) == 0) and "northern_corridor".replace("_", " ") in demo_text(3)
    for k in range(press + 1, r.week + 1):
        close(band[k], c["t"], unit=10, what=f"corridor flow in week {k}")
    assert num(c["t"]) < 0.5 * demo3.before
    names = list(r.view.name.values())
    for place in c["path"].split(" → "):
        place = re.sub(r" \(.*\)", "", place)
        assert place == "China" or any(place in n for n in names), place
    c = claim(3, r"Dy jumps \(\+(?P<lo>\d+)–(?P<hi>\d+) % (?P<a>\w+) to (?P<b>\w+) months after the corridor opened\)")
    opened = press + 1
    weeks = range(opened + math.ceil(count(c["a"]) * 52 / 12), opened + math.floor(count(c["b"]) * 52 / 12) + 1)
    dy = r.price("Dy")
    rise = 100 * (dy[list(weeks)] / dy[demo3.border] - 1)
    assert np.all((rise >= int(c["lo"]) - 0.5) & (rise < int(c["hi"]) + 0.5)), rise.round(1)
    assert 100 * (dy[opened + 4] / dy[demo3.border] - 1) < int(c["lo"]) / 2, "not yet a month after"
    c = claim(3, r"and goes on climbing for as long as the border stays closed: in (?P<when>late [A-Z][a-z]+ \d{4}) "
                 r"China's Dy peaks at about US\$(?P<peak>[\d,]+), more than (?P<times>\w+) times its price before the "
                 r"closure; then it falls, to about US\$(?P<low>\d+) by the time the Thai refinery below opens")
    assert r.posts_open[-1].sum() == 0, "the border stays closed"
    peak = int(np.argmax(dy[:demo3.no_feed + 1]))
    assert in_period(r.date(peak), c["when"]), r.date(peak)
    about(dy[peak], c["peak"], what="China's Dy at its peak")
    assert count(c["times"]) < dy[peak] / dy[demo3.border] < count(c["times"]) + 1, dy[peak] / dy[demo3.border]
    online = r.told("NE Thailand refinery (Udon Thani) starts refining")[0].week
    about(dy[online], c["low"], what="China's Dy when the Thai refinery opens")


def test_demo3_a_refinery_without_ore(demo3):
    r, press = demo3.r, demo3.finance
    c = claim(3, r"The event log says (?P<lender>[\w ]+?) lends US\$(?P<musd>\d+) million to build the (?P<plant>.+?), "
                 r"\"(?P<quote>[^\"]+)\"\. Play about (?P<years>\w+) simulated years")
    (told,) = [t for t in r.m.told if " lends US$" in t.text]
    assert told.week == press + 1
    assert told.text.startswith(f"{c['lender']} lends US${c['musd']} million to build {c['plant']} ")
    assert c["quote"] in told.text
    weeks_to_open = int(re.search(r"open in (\d+) weeks", c["quote"]).group(1))
    thai = [f["th_udon_thani"] for f in r.facilities]
    online = next(k for k, f in enumerate(thai) if f.phase == "ramping")
    assert online - press == weeks_to_open and round((demo3.no_feed - press) / 52) == count(c["years"])
    phases = [f.phase for k, f in enumerate(thai[:demo3.no_feed + 1]) if k == 0 or thai[k - 1].phase != f.phase]
    assert phases == ["planned", "permitting", "building", "ramping", "no_feed"]
    c = claim(3, r"comes online \((?P<cap>\d+) t REO a week of capacity\) — and finds almost no ore")
    close(r.s("capacity_online", "TH")[online], c["cap"], what="Thai capacity")
    assert r.told("NE Thailand refinery (Udon Thani) starts refining")[0].week == online
    assert all(f.output_t <= 0.01 * f.capacity_t for f in thai[online:demo3.no_feed + 1]), "almost no ore"
    c = claim(3, r"Play on: a few weeks later a trickle arrives, about (?P<t>\d+) t a week of its (?P<cap>\d+)\.")
    assert num(c["cap"]) == thai[demo3.no_feed].capacity_t
    later = [f.output_t for f in thai[demo3.no_feed + 10:]]  # "a few weeks later": from the third frame on
    close(statistics.median(later), c["t"], what="the Thai refinery's trickle")
    assert min(later) > 0 and max(later) < 0.05 * thai[demo3.no_feed].capacity_t, later
    c = claim(3, r"China's share of Dy refining does not move: about (?P<share>\d+) %, the rest from the "
                 r"(?P<circuit>.+?) \(open since (?P<since>[A-Z][a-z]+ \d{4}), [^)]*\) and Australia's "
                 r"(?P<plant>.+?) refinery \(open since (?P<when>[A-Z][a-z]+ \d{4})\)")
    share = r.s("china_refined_share", "", "Dy")
    now = demo3.no_feed
    assert abs(share[now] - share[online - 1]) < 0.005, (share[online - 1], share[now])
    about(100 * share[now], c["share"], what="China's share of Dy refining")
    (opened,) = r.told(f"{c['plant']} refinery starts refining")
    assert in_period(opened.date, c["when"])
    (circuit,) = r.told(f"{c['circuit']} starts refining")
    assert in_period(circuit.date, c["since"])
    # (a region whose plants have all closed is no longer recorded: the page draws no line, nan here, i.e. none)
    others = {k: np.nan_to_num(r.s("refined_output", k, "Dy")[now]) for k in r.h.regions("refined_output", "Dy")
              if k != "CN"}
    assert others["AU"] > 0 and others["MY"] > 0, others
    assert all(v == 0 for k, v in others.items() if k not in ("AU", "MY")), others
    c = claim(3, r"The grey square in California is (?P<who>.+?)' separation plant at (?P<site>[\w ]+): the event log "
                 r"says it closed for good in (?P<when>[A-Z][a-z]+ \d{4}), after two years of losing money")
    (closed,) = r.told(f"{c['who']} separation, {c['site']} closes for good")
    assert in_period(closed.date, c["when"]) and "lost money" in closed.text, closed.text
    mp = [f for f in r.facilities[now].values() if f.name.startswith(f"{c['who']} separation")]
    assert [f.phase for f in mp] == ["closed"] and mp[0].utilisation < 0.5, mp


def test_demo3_or_fund_it_from_the_finance_list():
    """Demo 3's other way: the plant picked in the finance list, the lender named, *Fund it*: the same loan."""
    c = claim(3, r"or pick (?P<project>.+?) in the finance list, lender (?P<lender>[\w ]+?), and press Fund it\)\. The "
                 r"event log says [\w ]+? lends US\$(?P<musd>\d+) million to build the .+?, \"(?P<quote>[^\"]+)\"")
    setup = claim(3, r"Setup: scenario `(?P<sc>\w+)`, seed 0, Reset, then Step (?P<n>\w+)\.")
    r = Replay(setup["sc"]).step(count(setup["n"]) + 2)  # the week the Thai refinery's button is pressed
    (project,) = [p for p in r.m.financeable() if p.name.startswith(c["project"])]
    assert c["lender"] in LENDERS and r.m.fund(project.id, c["lender"])
    press = r.week
    r.m.step()
    (told,) = [t for t in r.m.told if " lends US$" in t.text]
    assert told.week == press + 1 and f"US${c['musd']} million" in told.text and c["quote"] in told.text
