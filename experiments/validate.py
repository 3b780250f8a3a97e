"""Validation against the seed's facts and the public record: one table, one figure.

Each :class:`Target` names the scenario it needs, the fact it checks (seed F-id or FACTS id), the band that
counts as a pass, and a metric: a function of one run's tidy table returning a number. ``validate`` runs every
needed scenario over the same seeds, computes each metric per seed, and reports the median and the
10th-90th percentile range; a target passes when the median lies in its band. Every price metric works on
4-week means (the mean of the four weekly prices ending that week), never on a single week's extreme.

Where the seed's figure and the public record differ (seed/BRIEF.md), both are targets of the *same* world:
``myanmar_2025`` follows the seed (a near-total Kachin halt, F15-F16), ``myanmar_2025_record`` the public
record (a partial cut while ore piles up at the border, FACTS C13, C15, C16, P3).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from model.results import series

SEED_HALT = "2025-02-03"  # MiningHalt in myanmar_2025 (seed F15)
SEED_HALT_END = "2025-04-28"
LICENCE_START = "2025-04-07"  # first step on or after 4 Apr 2025 (FACTS D1)
LICENCE_LIFT = "2026-04-06"  # licence_one_year lifts the licences


def _dates(df: pd.DataFrame) -> pd.Series:
    return df.drop_duplicates("step").set_index("step")["date"]


def window(df: pd.DataFrame, variable: str, start: str, end: str, region: str = "", product: str = "") -> pd.Series:
    """Values of one output between two dates (inclusive)."""
    s = series(df, variable, region, product)
    d = _dates(df).reindex(s.index)
    return s[(d >= pd.Timestamp(start)) & (d <= pd.Timestamp(end))]


def mean4(df: pd.DataFrame, variable: str, region: str = "", product: str = "") -> pd.Series:
    """4-week means of one output, indexed by date (the mean of the four weeks ending that date)."""
    s = series(df, variable, region, product)
    d = _dates(df).reindex(s.index)
    return pd.Series(s.rolling(4).mean().to_numpy(), index=pd.DatetimeIndex(d.to_numpy())).dropna()


def at(s: pd.Series, date: str) -> float:
    """Value of a date-indexed series on the last date on or before ``date``."""
    return float(s[s.index <= pd.Timestamp(date)].iloc[-1])


def weeks_after(date: str, weeks: int) -> str:
    return (pd.Timestamp(date) + pd.Timedelta(weeks=weeks)).strftime("%Y-%m-%d")


def base_price(df: pd.DataFrame, product: str) -> float:
    """The 2024 price the run started from (FACTS P2): China-domestic price at step 0."""
    return float(series(df, "price", "CN", product).iloc[0])


# ------------------------------------------------------------------------------------------- calm baseline
def weekly_vol(product: str) -> Callable[[pd.DataFrame], float]:
    """Standard deviation of weekly log returns of the China-domestic price (FACTS P1)."""
    def metric(df):
        return float(np.log(series(df, "price", "CN", product)).diff().dropna().std())
    return metric


def lag1_ac(product: str) -> Callable[[pd.DataFrame], float]:
    """Lag-1 autocorrelation of weekly log returns (a sawtooth is strongly negative)."""
    def metric(df):
        return float(np.log(series(df, "price", "CN", product)).diff().dropna().autocorr(1))
    return metric


TRADE_BAND_TOLERANCE = 0.1  # traders' margins (1 %) and their stock response, x China's price (assumption)


def parity(df: pd.DataFrame) -> float:
    """Share of weeks in which, for every product, the ex-China price lies within the no-arbitrage band of
    China's while trade is free (mechanism M2): China's price +/- (the export cost + ``TRADE_BAND_TOLERANCE``
    x China's price). Above the band importers would bring more in; below it, where a world has exporters
    (the route back), they would ship it to China. The export cost is read from the run itself: every world
    starts ex-China at China's price plus the export cost and the importers' margin, or, for a product
    ex-China starts exporting, less them (``RareEarthModel._start_prices``). (It was one-way, ex-China >=
    0.99 x China, which only a world without a route back can meet and which never looked at the upper
    side.)"""
    ok = None
    for p in df.loc[df["variable"] == "price", "product"].unique():
        cn, row = series(df, "price", "CN", p), series(df, "price", "ROW", p)
        if cn.empty or row.empty:
            continue
        cost = abs(row.iloc[0] - cn.iloc[0])
        x = ((row - cn).abs() <= cost + TRADE_BAND_TOLERANCE * cn).iloc[1:].to_numpy()
        ok = x if ok is None else ok & x
    return float(ok.mean())


def drift(product: str) -> Callable[[pd.DataFrame], float]:
    """Last 4-week mean of the China-domestic price against the 2024 level, minus 1."""
    def metric(df):
        return float(mean4(df, "price", "CN", product).iloc[-1] / base_price(df, product) - 1.0)
    return metric


def comovement(df: pd.DataFrame) -> float:
    """Correlation of 4-weekly log changes of the Dy and Tb 4-week means (FACTS P1: 0.69 monthly)."""
    d = np.log(mean4(df, "price", "CN", "Dy").iloc[::4]).diff().dropna()
    t = np.log(mean4(df, "price", "CN", "Tb").iloc[::4]).diff().dropna()
    return float(d.corr(t))


def china_share(df: pd.DataFrame) -> float:
    return float(series(df, "china_refined_share").median())


def myanmar_heavy_share(df: pd.DataFrame) -> float:
    return float(series(df, "myanmar_share_cn_heavy_feed").median())


def kachin_sites(df: pd.DataFrame) -> float:
    return float(series(df, "kachin_active_sites").median())


def ore_value(df: pd.DataFrame) -> float:
    """Median Kachin ore price at the mine gate (levy of its own group included)."""
    return float(df.loc[df["variable"] == "ore_price", "value"].median())


# ------------------------------------------------------------------------------------------ Kachin shocks
def ore_yoy(df: pd.DataFrame) -> float:
    """Myanmar -> China ore in Feb 2025 vs Feb 2024 (fraction change)."""
    feb25 = window(df, "myanmar_ore_to_china", "2025-02-01", "2025-02-28").mean()
    feb24 = window(df, "myanmar_ore_to_china", "2024-02-01", "2024-02-29").mean()
    return float(feb25 / feb24 - 1.0)


def shock_rise(product: str) -> Callable[[pd.DataFrame], float]:
    """Highest 4-week mean ending 4-8 weeks after the halt, over the 4-week mean before it, minus 1."""
    def metric(df):
        m = mean4(df, "price", "CN", product)
        pre = at(m, weeks_after(SEED_HALT, -1))
        post = m[(m.index >= pd.Timestamp(weeks_after(SEED_HALT, 4))) & (m.index <= pd.Timestamp(weeks_after(SEED_HALT, 8)))]
        return float(post.max() / pre - 1.0)
    return metric


def reversion(df: pd.DataFrame) -> float:
    """Highest Dy 4-week mean ending 40-52 weeks after the halt ends, over the pre-halt level, minus 1."""
    m = mean4(df, "price", "CN", "Dy")
    pre = at(m, weeks_after(SEED_HALT, -1))
    post = m[(m.index >= pd.Timestamp(weeks_after(SEED_HALT_END, 40))) & (m.index <= pd.Timestamp(weeks_after(SEED_HALT_END, 52)))]
    return float(post.max() / pre - 1.0)


def dy_level(date: str) -> Callable[[pd.DataFrame], float]:
    """China-domestic Dy, 4-week mean ending on ``date`` (USD/kg)."""
    def metric(df):
        return at(mean4(df, "price", "CN", "Dy"), date)
    return metric


def surge(df: pd.DataFrame) -> float:
    """Myanmar -> China ore in the 8 weeks after the Pangwa crossing reopens (17 Mar 2025), over the same
    weeks of 2024 (FACTS C16: +67 % y/y in May 2025)."""
    a = window(df, "myanmar_ore_to_china", "2025-03-17", "2025-05-11").mean()
    b = window(df, "myanmar_ore_to_china", "2024-03-18", "2024-05-12").mean()
    return float(a / b)


# -------------------------------------------------------------------------------------------- licences
def spread(product: str) -> Callable[[pd.DataFrame], float]:
    """Ex-China over China-domestic, mean prices over weeks 8-16 after the licences start (FACTS D5)."""
    def metric(df):
        a, b = weeks_after(LICENCE_START, 8), weeks_after(LICENCE_START, 16)
        return float(window(df, "price", a, b, "ROW", product).mean() / window(df, "price", a, b, "CN", product).mean())
    return metric


def domestic_change(product: str) -> Callable[[pd.DataFrame], float]:
    """China-domestic mean price over weeks 8-16 after the licences start over the 4 weeks before, minus 1."""
    def metric(df):
        pre = at(mean4(df, "price", "CN", product), weeks_after(LICENCE_START, -1))
        a, b = weeks_after(LICENCE_START, 8), weeks_after(LICENCE_START, 16)
        return float(window(df, "price", a, b, "CN", product).mean() / pre - 1.0)
    return metric


def _exports(df: pd.DataFrame, start: str, end: str) -> float:
    d = df[(df["variable"] == "exports") & df["product"].isin(["Dy", "Tb"])]
    d = d[(d["date"] >= pd.Timestamp(start)) & (d["date"] <= pd.Timestamp(end))]
    weeks = max(d["date"].nunique(), 1)
    return float(d["value"].sum() / weeks)


def exports_ratio(df: pd.DataFrame) -> float:
    """China's Dy + Tb exports while licences apply (weeks 6-52) over the 13 weeks before them."""
    during = _exports(df, weeks_after(LICENCE_START, 6), weeks_after(LICENCE_START, 52))
    before = _exports(df, weeks_after(LICENCE_START, -13), weeks_after(LICENCE_START, -1))
    return during / before if before > 0 else float("nan")


def lift_peak(df: pd.DataFrame) -> float:
    """Highest China-domestic Dy 4-week mean in the 26 weeks after the licences are lifted, over the 4-week
    mean before the lift."""
    m = mean4(df, "price", "CN", "Dy")
    pre = at(m, weeks_after(LICENCE_LIFT, -1))
    post = m[(m.index >= pd.Timestamp(LICENCE_LIFT)) & (m.index <= pd.Timestamp(weeks_after(LICENCE_LIFT, 26)))]
    return float(post.max() / pre)


def lift_shortage(df: pd.DataFrame) -> float:
    """Chinese buyers' unmet need of Dy and Tb in the 26 weeks after the lift (t)."""
    d = df[(df["variable"] == "shortage") & (df["region"] == "CN") & df["product"].isin(HEAVY)]
    d = d[(d["date"] >= pd.Timestamp(LICENCE_LIFT)) & (d["date"] <= pd.Timestamp(weeks_after(LICENCE_LIFT, 26)))]
    return float(d["value"].sum())


def exchina_share_gain(df: pd.DataFrame) -> float:
    """Change of the ex-China share of refined output, first year to last year (fraction points)."""
    s = 1.0 - series(df, "china_refined_share")
    return float(s.iloc[-52:].mean() - s.iloc[:52].mean())


MAGNET_REES = ("NdPr", "Dy", "Tb")  # the IEA's basis for refining shares (FACTS R7, B4: magnet rare earths)


def refining_share(region: str, year: int, products: tuple[str, ...] = MAGNET_REES,
                   last: int | None = None) -> Callable[[pd.DataFrame], float]:
    """Share of the refined output of ``products`` (t of oxide; the magnet rare earths, the IEA's basis) made in
    ``region`` over the calendar years ``year`` to ``last`` (default: ``year`` alone). Counted over every product,
    a world with co-products (the magnet world's La and Ce, most of them from Bayan Obo) measured something else
    than the IEA's figure."""
    last = year if last is None else last

    def metric(df):
        years = pd.DatetimeIndex(df["date"]).year
        return region_share(df[(years >= year) & (years <= last)], "refined_output", region, products)
    return metric


def region_share(df: pd.DataFrame, variable: str, region: str, products: tuple[str, ...]) -> float:
    """``region``'s share of ``variable`` summed over the table's weeks and ``products`` (nan when there is none
    at all)."""
    d = df[(df["variable"] == variable) & df["product"].isin(products)]
    total = float(d["value"].sum())
    return float(d.loc[d["region"] == region, "value"].sum()) / total if total > 0 else float("nan")


def longest_shortage(products: tuple[str, ...] = ("NdPr", "Dy", "Tb", "NdFeB"), share: float = 0.05
                     ) -> Callable[[pd.DataFrame], float]:
    """Longest spell, in weeks, of 4-week means in which buyers' unmet need of any of ``products`` exceeds
    ``share`` of their need (4-week sums of shortage over 4-week sums of need, world total). NdFeB counts
    where the world has it: there buyers need magnets, not their oxides, and an oxide-only count is 0 by
    construction (it read 0 weeks in the magnet world while its NdFeB buyers were short for 68-92 weeks)."""
    def metric(df):
        dates = pd.DatetimeIndex(_dates(df).to_numpy())
        over = np.zeros(len(dates), dtype=bool)
        for p in products:
            d = df[df["product"] == p]
            short = d[d["variable"] == "shortage"].groupby("date")["value"].sum()
            need = d[d["variable"] == "need"].groupby("date")["value"].sum()
            short = short.reindex(dates, fill_value=0.0).rolling(4).sum()
            need = need.reindex(dates, fill_value=0.0).rolling(4).sum()
            over |= (short > share * need).to_numpy() & (need > 0).to_numpy()
        best = run = 0
        for o in over:
            run = run + 1 if o else 0
            best = max(best, run)
        return float(best)
    return metric


FIRST_DY = "2025-05-05"  # FACTS E7: Lynas's first Dy oxide, May 2025 (the first separated outside China)


def first_exchina(product: str, threshold_t: float = 0.5) -> Callable[[pd.DataFrame], float]:
    """Weeks from ``FIRST_DY`` to the first 4-week mean of ``product`` refined outside China above
    ``threshold_t`` t/week (negative: before; the run's last week + 1 if never)."""
    def metric(df):
        d = df[(df["variable"] == "refined_output") & (df["product"] == product) & (df["region"] != "CN")]
        weekly = d.groupby("date")["value"].sum()
        dates = pd.DatetimeIndex(_dates(df).to_numpy())
        s = weekly.reindex(dates, fill_value=0.0).rolling(4).mean()
        hit = s[s > threshold_t]
        when = hit.index[0] if len(hit) else dates[-1] + pd.Timedelta(weeks=1)
        return float((when - pd.Timestamp(FIRST_DY)).days / 7)
    return metric


# -------------------------------------------------------------------------------------- the magnet stage
def magnet_share(df: pd.DataFrame) -> float:
    """China's share of the magnets made in 2025 (FACTS B5: 94 %, a 2025 figure; the ex-China plants being built
    then, such as MP's 10X from 2028, FACTS E1, come later)."""
    d = df[(df["variable"] == "china_magnet_share") & (df["region"] == "") & (df["product"] == "")]
    return float(d.loc[pd.DatetimeIndex(d["date"]).year == 2025, "value"].mean())


def swarf_ndpr_kt(df: pd.DataFrame) -> float:
    """NdPr recovered from magnet swarf in the first year, kt (FACTS R1: 26.5 kt of recycled PrNd in China in 2024,
    swarf and end-of-life together)."""
    d = df[(df["variable"] == "recycled") & (df["product"] == "NdPr") & (df["step"] >= 1) & (df["step"] <= 52)]
    return float(d["value"].sum() / 1000.0)


def magnet_spread(df: pd.DataFrame) -> float:
    """Ex-China over China-domestic NdFeB price, 4-week means on 20 Oct 2025 (FACTS D7: ~6x in October 2025)."""
    return float(at(mean4(df, "price", "ROW", "NdFeB"), "2025-10-20") / at(mean4(df, "price", "CN", "NdFeB"), "2025-10-20"))


def yttrium_split(df: pd.DataFrame) -> float:
    """Highest ex-China yttrium 4-week mean over China's on the same date, in the licences' first year (FACTS
    P4: ~US$270 against ~US$7/kg)."""
    row, cn = mean4(df, "price", "ROW", "Y"), mean4(df, "price", "CN", "Y")
    end = weeks_after(LICENCE_START, 52)
    ratio = (row / cn.reindex(row.index))[(row.index >= pd.Timestamp(LICENCE_START)) & (row.index <= pd.Timestamp(end))]
    return float(ratio.max())


def dearest_dy_share(df: pd.DataFrame) -> float:
    """Share of the world's Dy volume (China's auction, ex-China contracts and spot) that traded at 3.5x China's
    price or more (US$800 against US$224), in the licences' first year (FACTS P4: < 1 %)."""
    a, b = LICENCE_START, weeks_after(LICENCE_START, 52)
    cn_p, row_p = window(df, "price", a, b, "CN", "Dy"), window(df, "price", a, b, "ROW", "Dy")
    spot = window(df, "volume", a, b, "ROW", "Dy")
    total = window(df, "volume", a, b, "CN", "Dy") + spot + window(df, "contract_volume", a, b, "ROW", "Dy")
    dear = spot[(row_p >= 3.5 * cn_p).to_numpy()]
    # no volume to share (a world without the contract market reports none): no data, not a division by zero
    return float(dear.sum() / total.sum()) if total.sum() > 0 else float("nan")


def smco_unmet(df: pd.DataFrame) -> float:
    """Share of ex-China SmCo need unmet in the licences' first year (FACTS P8: samarium the sharpest chokepoint)."""
    end = weeks_after(LICENCE_START, 52)
    short = df[(df["variable"] == "shortage") & (df["product"] == "SmCo") & (df["region"] != "CN")]
    use = df[(df["variable"] == "consumption") & (df["product"] == "SmCo") & (df["region"] != "CN")]
    inside = [(x["date"] >= pd.Timestamp(LICENCE_START)) & (x["date"] <= pd.Timestamp(end)) for x in (short, use)]
    s, u = short[inside[0]]["value"].sum(), use[inside[1]]["value"].sum()
    return float(s / (s + u)) if s + u > 0 else float("nan")


@dataclass(frozen=True)
class Target:
    name: str
    scenario: str
    source: str
    lo: float
    hi: float
    metric: Callable[[pd.DataFrame], float]
    unit: str = ""
    public: str = ""  # the public figure where it differs from the seed's, or a note
    known_gap: str = ""  # why the model misses it today (README, Known limits); its test is a strict xfail
    # measured against the scenario's no-policy twin on the same seed (the metric of the run minus the metric of
    # the twin's run): a policy's effect, not a before/after drift
    paired: bool = False

    @property
    def runs(self) -> tuple[str, ...]:
        """The runs it reads, as keys of :func:`scenario_for`: its scenario, and its twin if it is paired."""
        return (self.scenario, self.scenario + TWIN) if self.paired else (self.scenario,)


TWIN = " (no-policy twin)"  # suffix of a run key: the scenario with every policy removed, its events kept


HEAVY = ("Dy", "Tb")
PRODUCTS = ("NdPr", "Dy", "Tb")

TARGETS: list[Target] = [
    # the calm baseline
    *[Target(f"{p} weekly log-return s.d.", "baseline", "FACTS P1", 0.0, 0.03, weekly_vol(p), "fraction",
             "1-3 % in an ordinary week") for p in PRODUCTS],
    *[Target(f"{p} lag-1 autocorrelation of weekly returns", "baseline", "FACTS P1", -0.15, 1.0, lag1_ac(p),
             "") for p in PRODUCTS],
    Target("Weeks with ex-China within the trade band of China", "baseline", "mechanism M2", 0.95, 1.0, parity,
           "fraction"),
    *[Target(f"{p} 10-year drift (4-week mean vs 2024)", "baseline", "FACTS P2", -0.25, 0.25, drift(p), "fraction")
      for p in PRODUCTS],
    Target("Dy-Tb co-movement (4-weekly changes)", "baseline", "FACTS P1", 0.5, 1.0, comovement, "correlation",
           "0.69 monthly (2014-2025)"),
    Target("China share of refined output", "baseline", "seed F7; FACTS B4", 0.85, 0.95, china_share, "fraction",
           "IEA: 0.92 (2023)"),
    Target("Myanmar share of China's heavy feed", "baseline", "FACTS C1", 0.40, 0.60, myanmar_heavy_share,
           "fraction"),
    Target("Active Kachin mine sites", "baseline", "seed F12; FACTS C7", 300, 450, kachin_sites, "sites",
           "ISP-Myanmar: 370+ (end 2024)"),
    Target("Kachin ore gate price", "baseline", "seed F14", 8.0, 16.0, ore_value, "USD/kg REO",
           "seed: ~14.5 USD/kg at the border"),
    # the seed's shock
    Target("Myanmar->China ore, Feb 2025 y/y (seed)", "myanmar_2025", "seed F15", -0.95, -0.80, ore_yoy, "fraction",
           "public: -56 % (FACTS C13)"),
    *[Target(f"{p} rise within 4-8 weeks of the halt (seed)", "myanmar_2025", "seed F16", 0.45, 0.75, shock_rise(p),
             "fraction", "not found publicly (FACTS C15)") for p in HEAVY],
    Target("Dy 40-52 weeks after the halt ends, vs before", "myanmar_2025", "reversion", -0.30, 0.30, reversion,
           "fraction"),
    # the public record
    Target("Myanmar->China ore, Feb 2025 y/y (record)", "myanmar_2025_record", "FACTS C13", -0.70, -0.40, ore_yoy,
           "fraction", "SMM: -56 %"),
    Target("Dy, 4-week mean to 26 Mar 2025 (record)", "myanmar_2025_record", "FACTS C15", 191, 259,
           dy_level("2025-03-26"), "USD/kg", "~225 (SMM)"),
    Target("Dy, 4-week mean to 21 Nov 2025 (record)", "myanmar_2025_record", "FACTS P3", 181, 254,
           dy_level("2025-11-21"), "USD/kg", "213-221 (SMM)",
           known_gap="the default world starts at rest at the 2024 average (FACTS P2: 255 USD/kg), its Dy balanced "
                     "element by element, and after the record's halt and surge it is back there (~255); the public "
                     "Dy had already fallen ~12 % below that average by March 2025 (FACTS C15: ~225), a decline "
                     "through 2024 that the start does not carry; the oxide world, whose 2024 plants make more Dy "
                     "than its buyers use, drifts down and meets the band (~210); the default world's posterior "
                     "meets it in 14 of 20 particles, those with a lower full_cost_markup: an edge of the "
                     "calibration at the hand value 0.72"),
    Target("Ore surge after the crossing reopens, y/y (record)", "myanmar_2025_record", "FACTS C16", 1.2, 2.5, surge,
           "ratio", "May 2025: +67 % y/y"),
    # export licences
    *[Target(f"{p} ex-China / China, weeks 8-16 of licences", "china_controls_2025", "FACTS D5", 2.5, 6.0,
             spread(p), "ratio", "Argus: Dy 3-4x, Tb 2-4x") for p in HEAVY],
    *[Target(f"{p} China-domestic change, weeks 8-16 of licences", "china_controls_2025", "FACTS D5", -0.30, 0.20,
             domestic_change(p), "fraction", "'remained stable'") for p in HEAVY],
    Target("China's Dy+Tb exports under licences vs before", "china_controls_2025", "FACTS D3, D8", 0.0, 0.5,
           exports_ratio, "ratio", "RE products -61 % y/y (May 2025)"),
    Target("Dy in China after the licences are lifted, peak vs before", "licence_one_year", "arbitrage", 0.0, 1.25,
           lift_peak, "ratio",
           known_gap="with Lynas's heavy-RE circuit selling Dy outside China, China's Dy falls further under a year of "
                     "licences and the lift takes it back to about its level before them; the metric compares with "
                     "the depressed week before the lift, not with the no-licence twin, but against the twin on "
                     "the same dates China's Dy still peaks 15-31 % above it (seeds 1-3) as Chinese makers fill "
                     "the orders abroad; no particle of the default world's posterior meets it"),
    Target("Chinese Dy+Tb shortage after the lift", "licence_one_year", "arbitrage", 0.0, 0.01, lift_shortage, "t"),
    # financing
    # the magnet stage (world_2024_magnets.toml)
    Target("China's share of magnets made", "magnets_baseline", "FACTS B5", 0.90, 0.97, magnet_share, "fraction"),
    Target("NdPr recycled from swarf, first year", "magnets_baseline", "FACTS R1", 18.0, 30.0, swarf_ndpr_kt, "kt",
           public="26.5 kt of recycled PrNd in China in 2024, swarf and end-of-life together"),
    Target("Ex-China / China NdFeB magnet price, Oct 2025", "magnets_controls_2025", "FACTS D7", 3.0, 9.0,
           magnet_spread, "ratio", public="IEA: European magnet prices ~6x China's"),
    Target("World Dy volume at >= 3.5x China's price, first year", "magnets_controls_2025", "FACTS P4", 0.0, 0.02,
           dearest_dy_share, "fraction", public="< 1 % at >= US$800/kg; ~96 % at ~US$224 (China's level)"),
    Target("Ex-China / China yttrium, peak 4-week mean", "yttrium_split", "FACTS P4", 15.0, 60.0, yttrium_split,
           "ratio", public="~US$270 against ~US$7/kg; most volume still moved near China's price"),
    Target("Ex-China SmCo need unmet, first year of licences", "samarium_defence", "FACTS P8", 0.05, 1.0, smco_unmet,
           "fraction", public="qualitative: no sign of samarium approvals in June 2025"),
    Target("Ex-China share of refining, gain", "us_japan_framework", "seed F3, F5; M3", 0.0, 1.0, exchina_share_gain,
           "fraction points"),
    # the framework against its twin (issue 12): its lenders' projects change who refines the heavy rare earths
    # once they are built (its letters of interest named a heavy-RE mine, Browns Range, FACTS E3); measurable
    # = at least one point of share, the median's sign and size stated
    Target("China's Dy+Tb refining share 2029-30, framework minus twin", "us_japan_framework",
           "seed F3, F5; FACTS E3; M3", -1.0, -0.01, refining_share("CN", 2029, HEAVY, last=2030), "fraction points",
           public="EXIM letters: Browns Range (heavy RE) up to US$230M", paired=True),
    # the supply side (issue 12): announced projects, the first heavy rare earths outside China
    Target("China's share of refined output, 2030 (announced projects)", "announced_projects", "FACTS R7", 0.72,
           0.85, refining_share("CN", 2030), "fraction",
           public="IEA announced-projects case: 0.77; IEA 2025: 'declining only marginally'"),
    Target("Malaysia's share of refined output, 2030 (announced projects)", "announced_projects", "FACTS R7", 0.08,
           0.16, refining_share("MY", 2030), "fraction", public="IEA announced-projects case: 0.12"),
    Target("Longest spell of unmet need above 5 % (NdPr, Dy, Tb), demand growing", "demand_growth_aps",
           "FACTS B6, R6, P6", 0.0, 26.0, longest_shortage(), "weeks",
           public="supply enters before shortages persist"),
    Target("First ex-China Dy oxide, weeks after 5 May 2025", "baseline", "FACTS E7, R2", -4.0, 13.0,
           first_exchina("Dy"), "weeks", public="Lynas, Malaysia: May 2025"),
]


def resolve_world(world: str) -> str:
    """A world named for ``--world``: a file that exists (made absolute, so that every scenario finds it
    wherever its own file is) or the name of a shipped world; else a ConfigError naming the option."""
    from model.params import DATA_DIR, ConfigError

    path = Path(world).expanduser()
    if path.is_file():
        return str(path.resolve())
    if (DATA_DIR / world).is_file():
        return world
    raise ConfigError(f"--world {world!r}: file not found (looked in {Path.cwd()} and {DATA_DIR}); give a world "
                      f"file, e.g. --world world_2024_magnets.toml (shipped) or --world path/to/my_world.toml")


def scenario_on_world(name: str, world: str | None):
    """The scenario ``name`` with its world replaced by ``world`` (as it is when ``world`` is None)."""
    from model.scenario import load_scenario

    sc = load_scenario(name)
    return sc if world is None else sc.model_copy(update={"world": world})


def scenario_for(key: str, world: str | None):
    """The scenario a run key names (:attr:`Target.runs`): a scenario on ``world`` (:func:`scenario_on_world`), or,
    for a key ending in :data:`TWIN`, that scenario's no-policy twin (every policy removed, its events kept:
    :func:`experiments.levers.without_policies`)."""
    if key.endswith(TWIN):
        from experiments.levers import without_policies

        return without_policies(scenario_on_world(key[: -len(TWIN)], world))
    return scenario_on_world(key, world)


def measure_runs(t: Target, runs: dict[str, pd.DataFrame], world: str | None) -> float:
    """A target's value from one seed's runs (``{run key: table}``): its metric, less the twin's if it is paired."""
    value = _measure(t, runs[t.scenario], world)
    return value - _measure(t, runs[t.scenario + TWIN], world) if t.paired else value


def targets_on_world(world: str, targets: list[Target] | None = None) -> tuple[list[Target], list[tuple[str, str]]]:
    """The targets whose scenario runs on ``world`` (its timeline checked against that world), and for the rest
    (scenario, why): e.g. a magnet licence on a world without magnets."""
    from model.params import ConfigError

    targets = targets or TARGETS
    why: dict[str, str] = {}
    for name in dict.fromkeys(t.scenario for t in targets):
        try:
            scenario_on_world(name, world).check()
        except ConfigError as e:
            why[name] = str(e).splitlines()[0]
    return [t for t in targets if t.scenario not in why], list(why.items())


def validate(seeds: list[int], workers: int = 2, targets: list[Target] | None = None,
             overrides: dict | None = None, world: str | None = None, progress: bool = False,
             draws: list[dict] | None = None) -> pd.DataFrame:
    """Run every scenario the targets need over ``seeds``; one row per target. ``overrides`` (world
    overrides, as in a calibration search) apply to every run; ``progress`` shows a bar on stderr. With
    ``world`` (a file from :func:`resolve_world`), every scenario runs on that world instead of its own (an
    edited or second world checked against the same targets; see :func:`targets_on_world` for the ones that
    cannot run on it). With ``draws`` (parameter sets, e.g. from :func:`posterior_draws`), every seed runs
    under every draw (the same seeds for each: common random numbers); the median and p10-p90 then span
    parameter and seed variation together, and ``pass_share`` is the share of draws whose own median over
    the seeds lies in the band."""
    from experiments.run import progress_bar

    targets = targets or TARGETS
    scenarios = list(dict.fromkeys(k for t in targets for k in t.runs))
    sets = draws or [{}]  # without a posterior, one draw that changes nothing
    jobs = [(sc, s, d) for sc in scenarios for d in range(len(sets)) for s in seeds]
    run = _Runner(overrides or {}, world, sets)
    runs = []
    with progress_bar(len(jobs), "validate", progress) as bar:
        if workers > 1:
            # forkserver: this process (and its progress bar's thread) is never forked
            from experiments.sweep import process_pool

            with process_pool(workers) as ex:
                try:
                    for r in ex.map(run, jobs):
                        runs.append(r)
                        bar.update()
                except BaseException:  # Ctrl-C: stop now, not after the runs still queued
                    ex.shutdown(wait=False, cancel_futures=True)
                    raise
        else:
            for j in jobs:
                runs.append(run(j))
                bar.update()
    by_scenario: dict[str, list[pd.DataFrame]] = {}
    draw_of: dict[str, list[int]] = {}
    for (sc, _, d), (_, _, df) in zip(jobs, runs, strict=True):
        by_scenario.setdefault(sc, []).append(df)
        draw_of.setdefault(sc, []).append(d)
    rows = []
    for t in targets:
        # the runs of one target's keys line up: each key ran every (draw, seed) in the same order
        vals = np.array([measure_runs(t, dict(zip(t.runs, dfs, strict=True)), world)
                         for dfs in zip(*(by_scenario[k] for k in t.runs), strict=True)])
        if np.isnan(vals).all():  # nothing to measure (another world without the product or stage it reads)
            med = p10 = p90 = float("nan")
        else:
            med, p10, p90 = (float(np.nanmedian(vals)), float(np.nanpercentile(vals, 10)),
                             float(np.nanpercentile(vals, 90)))
        rows.append({
            "target": t.name, "scenario": t.scenario, "source": t.source, "band": f"[{t.lo:g}, {t.hi:g}]",
            "unit": t.unit, "median": med, "p10": p10, "p90": p90, "pass": bool(t.lo <= med <= t.hi),
            "public": t.public, "seeds": len(vals), "known_gap": t.known_gap,
        })
        if draws:
            d = np.array(draw_of[t.scenario])
            meds = [np.nanmedian(vals[d == k]) if np.isfinite(vals[d == k]).any() else np.nan
                    for k in range(len(draws))]
            rows[-1]["seeds"] = len(seeds)
            rows[-1]["draws"] = len(draws)
            rows[-1]["pass_share"] = float(np.mean([t.lo <= x <= t.hi for x in meds]))
    return pd.DataFrame(rows)


def posterior_draws(path, k: int, seed: int = 0) -> list[dict]:
    """``k`` parameter sets drawn by weight, with replacement, from a posterior written by ``ree calibrate``
    (``posterior.csv``: the parameters' columns, then ``weight``), with a generator seeded by ``seed``."""
    from model.params import ConfigError

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--posterior {str(path)!r}: file not found; give the posterior.csv that "
                          f"ree calibrate wrote")
    table = pd.read_csv(path)
    if "weight" not in table.columns or table.columns.get_loc("weight") == 0:
        raise ConfigError(f"--posterior {str(path)!r}: no parameter columns before a 'weight' column; give the "
                          f"posterior.csv that ree calibrate wrote")
    params = list(table.columns[:table.columns.get_loc("weight")])
    text = [p for p in params if not pd.api.types.is_numeric_dtype(table[p]) or table[p].isna().any()]
    if text:
        raise ConfigError(f"--posterior {str(path)!r}: column {text[0]!r} holds a value that is not a number; "
                          f"give the posterior.csv that ree calibrate wrote (numbers before 'weight')")
    w = table["weight"].to_numpy(dtype=float)
    if not (np.isfinite(w).all() and (w >= 0).all() and w.sum() > 0):
        raise ConfigError(f"--posterior {str(path)!r}: weights must be non-negative with a positive sum")
    if k < 1:
        raise ConfigError(f"--draws {k}: give at least 1")
    from experiments.sensitivity import INTEGER_FIELDS

    idx = np.random.default_rng(seed).choice(len(table), size=k, replace=True, p=w / w.sum())
    # an integer field as the calibration ran it (experiments.calibrate._point rounds it; the table has the
    # particle's unrounded value)
    return [{p: (int(round(float(table[p].iloc[i]))) if p.rsplit(".", 1)[-1] in INTEGER_FIELDS
                 else float(table[p].iloc[i])) for p in params} for i in idx.tolist()]


def _measure(t: Target, df: pd.DataFrame, world: str | None) -> float:
    """A target's metric on one run; on another world (``--world``), nan when the run lacks what the metric
    reads (e.g. magnet prices on a world without magnets). On the scenarios' own worlds an error is an error."""
    if world is None:
        return t.metric(df)
    try:
        return float(t.metric(df))
    except (IndexError, KeyError, ValueError, ZeroDivisionError):
        return float("nan")


class _Runner:
    """A picklable runner of a job ``(scenario, seed, draw)``: the scenario (on another world with
    ``--world``) under the world overrides (a calibration search's) and that parameter draw's
    (``--posterior``; one empty draw without it)."""

    def __init__(self, overrides: dict, world: str | None, draws: list[dict]):
        self.overrides = overrides
        self.world = world
        self.draws = draws

    def __call__(self, args: tuple[str, int, int]) -> tuple[str, int, pd.DataFrame]:
        from experiments.run import run_one

        scenario, seed, d = args
        ov = {**self.overrides, **self.draws[d]}
        return scenario, seed, run_one(scenario_for(scenario, self.world), seed, overrides=ov or None)


def to_markdown(table: pd.DataFrame) -> str:
    lines = ["| target | scenario | source | band | model median [p10, p90] | pass | public figure |",
             "|---|---|---|---|---|---|---|"]
    shares = "pass_share" in table.columns
    for r in table.itertuples():
        verdict = "pass" if r.pass_ else ("FAIL (known gap)" if getattr(r, "known_gap", "") else "FAIL")
        if shares:  # with --posterior: how many of the parameter draws pass on their own
            verdict += f" ({r.pass_share:.0%} of draws)"
        lines.append(f"| {r.target} | {r.scenario} | {r.source} | {r.band} {r.unit} | "
                     f"{r.median:.3g} [{r.p10:.3g}, {r.p90:.3g}] | {verdict} | {r.public} |")
    return "\n".join(lines)


def figure(table: pd.DataFrame, path) -> None:
    """One panel per target in its own unit: grey band = target, dot = median, line = 10-90 % over
    seeds; a cross instead of a dot marks a failed target."""
    from matplotlib.figure import Figure

    n = len(table)
    fig = Figure(figsize=(9, 0.62 * n + 0.8), layout="constrained")
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, r in zip(axes, table.itertuples(), strict=True):
        lo, hi = (float(x) for x in r.band.strip("[]").split(","))
        span = max(hi, r.p90) - min(lo, r.p10)
        span = span if span > 0 else 1.0
        left, right = min(lo, r.p10) - 0.15 * span, max(hi, r.p90) + 0.15 * span
        ax.axvspan(lo, hi, color="0.85")
        ax.plot([r.p10, r.p90], [0, 0], color="black", linewidth=1.5)
        ax.plot(r.median, 0, marker="o" if r.pass_ else "X", color="black", markersize=7)
        ax.set_xlim(left, right)
        ax.set_yticks([])
        ax.tick_params(axis="x", labelsize=7, pad=1)
        ax.set_title(f"{r.target} ({r.source}) [{r.unit}]", fontsize=8, loc="left", pad=2)
    fig.suptitle(f"Validation over {int(table['seeds'].iloc[0])} seeds: grey = target band, dot = median "
                 f"(x = fail), line = 10-90 %", fontsize=9)
    fig.savefig(path, dpi=150)


def run_validation(seeds: list[int], out, workers: int = 2, world: str | None = None,
                   targets: list[Target] | None = None, progress: bool = False,
                   draws: list[dict] | None = None) -> pd.DataFrame:
    from experiments.paths import ensure_dir, writing
    from experiments.run import atomic_write_bytes, atomic_write_json, provenance

    out = ensure_dir(Path(out))  # before the runs: an unwritable folder fails in a second, not minutes
    t0 = dt.datetime.now()
    table = validate(seeds, workers, targets=targets, world=world, progress=progress, draws=draws)
    table.rename(columns={"pass": "pass_"}).pipe(lambda t: atomic_write_bytes(
        out / "validation.md", (to_markdown(t) + "\n").encode()))
    atomic_write_bytes(out / "validation.csv", table.to_csv(index=False).encode())
    with writing(out / "validation.png"):
        figure(table.rename(columns={"pass": "pass_"}), out / "validation.png")
    atomic_write_json(provenance(scenario_on_world("baseline", world), seeds, None,
                                 extra={"wall_seconds": (dt.datetime.now() - t0).total_seconds(),
                                        "world": world or "each scenario's own",
                                        "draws": draws or []}),
                      out / "provenance.json")
    return table
