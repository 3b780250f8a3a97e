"""Figures: drawn from saved tables only, units on every axis, bands over runs, every output format."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image
from typer.testing import CliRunner

from experiments import figures as F
from experiments.cli import app
from experiments.run import run_one
from experiments.sweep import sweep
from model.params import load_world
from model.results import COLUMNS, OUTPUTS
from model.scenario import load_scenario
from tests.conftest import build_scenario

WEEKS = 13
OXIDE = "world_2024.toml"  # the runs below: the oxide world (every product an oxide, no magnet stage)
WORLD = load_world(OXIDE)
PRODUCTS = WORLD.product_names  # whatever the world file lists: the figures must follow it


@pytest.fixture(scope="module")
def two_runs() -> pd.DataFrame:
    sc = build_scenario("baseline", world=OXIDE)
    return pd.concat([run_one(sc, s, WEEKS, run_id=f"baseline-s{s}") for s in (1, 2)], ignore_index=True)


@pytest.fixture(scope="module")
def licence_runs() -> pd.DataFrame:
    """China licenses Dy and Tb exports from week 13; approvals arrive after a 6-week delay."""
    sc = build_scenario("licence_one_year", world=OXIDE)
    return pd.concat([run_one(sc, s, 20, run_id=f"licence-s{s}") for s in (1, 2)], ignore_index=True)


def _with_product(df: pd.DataFrame, name: str, like: str = "Dy", factor: float = 0.5) -> pd.DataFrame:
    """The table plus a product the world file does not have, recorded like ``like`` (values x factor)."""
    extra = df[df["product"] == like].copy()
    extra["product"] = name
    extra["value"] = extra["value"] * factor
    return pd.concat([df, extra], ignore_index=True)


def _titles(fig: Figure) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def _shock(df: pd.DataFrame) -> pd.DataFrame:
    """A copy under another scenario name with Dy shortages in two states (the baseline has none)."""
    d = df.copy()
    d["scenario"] = "shock"
    m = (d["variable"] == "shortage") & d["region"].isin(["JP", "US"]) & (d["product"] == "Dy") & (d["step"] > 4)
    d.loc[m, "value"] = 3.0 + d.loc[m, "seed"]
    return d


def _ylabels(fig: Figure) -> list[str]:
    return [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()]


def _legend_texts(fig: Figure) -> list[str]:
    return [t.get_text() for leg in fig.legends for t in leg.get_texts()]


@pytest.mark.parametrize("kind, variable", [
    ("price_paths", "price"), ("ore_flows", "myanmar_ore_flow"), ("shortage", "shortage"),
    ("capacity_buildout", "capacity_online")])
def test_each_figure_labels_its_axes_with_units_from_the_schema(two_runs, kind, variable):
    fig = F.FIGURES[kind](_shock(two_runs), title="t")
    assert isinstance(fig, Figure)
    o = OUTPUTS[variable]
    ylabels = _ylabels(fig)
    assert ylabels and all(o.unit in y and o.label.split()[0] in y for y in ylabels), ylabels
    assert all(ax.get_xlabel().startswith("Date") for ax in fig.axes)
    assert any("10–90 % of 2 runs" in t for t in _legend_texts(fig))


def test_spread_ratio_is_ex_china_over_china(two_runs):
    fig = F.spread_ratio(two_runs)
    (ax,) = fig.axes
    assert "ratio" in ax.get_ylabel() and OUTPUTS["price"].unit in ax.get_ylabel()
    assert "ex-China ÷ China-domestic" in ax.get_ylabel()  # the world's region names, importer over source
    assert {ln.get_label() for ln in ax.get_lines()} >= {f"{p} oxide" for p in PRODUCTS}
    r = F.price_ratio(two_runs)
    assert set(r["region"]) == {"ROW"}  # the importing region
    p = two_runs[two_runs["variable"] == "price"].pivot_table(index=["run_id", "date", "product"],
                                                              columns="region", values="value")
    np.testing.assert_allclose(r.set_index(["run_id", "date", "product"])["value"].sort_index(),
                               (p["ROW"] / p["CN"]).sort_index())


def test_lines_are_distinguishable_without_colour(two_runs):
    fig = F.shortage(_shock(two_runs))
    dy = next(ax for ax in fig.axes if ax.get_title() == "Dy oxide")
    lines = [ln for ln in dy.get_lines() if ln.get_label() in ("Japan", "United States")]
    assert len(lines) == 2
    assert lines[0].get_linestyle() != lines[1].get_linestyle() and lines[0].get_marker() != lines[1].get_marker()


def test_ensemble_median_band_and_zero_fill():
    d0 = dt.datetime(2024, 1, 1)
    rows = []
    for run, vals in {"a": [1.0, 2.0], "b": [3.0, None], "c": [5.0, 6.0]}.items():
        for step, v in enumerate(vals):
            if v is not None:  # run b records no flow in week 1 (a flow output skips empty weeks)
                rows.append({"run_id": run, "step": step, "date": d0 + dt.timedelta(weeks=step),
                             "variable": "myanmar_ore_flow", "region": "pianma", "product": "", "value": v})
    df = pd.DataFrame(rows)
    e = F.ensemble(df, "myanmar_ore_flow", ["region"], fill=0.0)
    assert e["median"].tolist() == [3.0, 2.0]  # week 1: median of (2, 0, 6)
    assert e["n"].tolist() == [3, 3]
    np.testing.assert_allclose(e["lo"], [np.quantile([1, 3, 5], 0.1), np.quantile([2, 0, 6], 0.1)])
    # the historical helper keeps its signature and semantics
    b = F.band(df, "myanmar_ore_flow", ["region"])
    assert list(b.columns) == ["date", "region", "median", "lo", "hi"]


def test_price_chart_keeps_its_signature(two_runs, tmp_path):
    fig = F.price_chart(two_runs, tmp_path / "p.png", title="x")
    assert isinstance(fig, Figure) and (tmp_path / "p.png").stat().st_size > 0


def test_make_figures_for_run_all_folder_and_sweep(two_runs, tmp_path):
    root = tmp_path / "results"
    for name, df in (("baseline", two_runs[two_runs["seed"] == 1]), ("shock", _shock(two_runs))):
        (root / name).mkdir(parents=True)
        df[COLUMNS].to_parquet(root / name / "results.parquet", index=False)
    spec = tmp_path / "s.toml"
    spec.write_text(f'name = "s"\nscenario = "baseline"\nweeks = {WEEKS}\nseeds = [1, 2]\n')
    sweep(spec, root / "sweeps" / "s", workers=1, progress=False)

    paths = F.make_figures(root, formats=("png",))
    names = {p.relative_to(root / "figures").as_posix() for p in paths}
    # the sweep ran baseline on its own world: the magnet figure needs a magnet stage
    swept = any(p.stage == "magnet" for p in load_scenario("baseline").load_world().products)
    for folder, magnets in (("baseline", False), ("shock", False), ("sweeps/s/baseline", swept)):
        for kind in F.FIGURES:  # every type the run's world records
            assert (f"{folder}/{kind}.png" in names) == (kind not in F.NEEDS or magnets), (folder, kind)
    assert {f"comparison/price_{p}.png" for p in PRODUCTS} <= names
    assert all(p.stat().st_size > 1000 for p in paths)
    with Image.open(root / "figures" / "baseline" / "price_paths.png") as im:
        dpi = im.info.get("dpi", (0, 0))[0]
        assert round(dpi) == 300 and im.size[0] == round(F.WIDTH_IN * 300)


def test_save_writes_pdf_svg_and_png(two_runs, tmp_path):
    paths = F.save(F.shortage(_shock(two_runs)), tmp_path / "shortage")
    assert [p.suffix for p in paths] == [".pdf", ".svg", ".png"]
    assert (tmp_path / "shortage.pdf").read_bytes().startswith(b"%PDF")
    assert "Unmet need" in (tmp_path / "shortage.svg").read_text()  # text stays text


def test_cli_figures(two_runs, tmp_path):
    (tmp_path / "r").mkdir()
    two_runs.to_parquet(tmp_path / "r" / "results.parquet", index=False)
    r = CliRunner().invoke(app, ["figures", str(tmp_path / "r"), "--formats", "png", "--kind", "price_paths"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "r" / "figures" / "price_paths.png").exists()
    r = CliRunner().invoke(app, ["figures", str(tmp_path / "nothing_here")])
    assert r.exit_code == 2 and "no such folder" in r.output


def test_figures_follow_the_products_in_the_table(two_runs, tmp_path):
    """A product the code never heard of gets its panels: nothing in experiments/ lists the products."""
    df = _with_product(two_runs, "Ho")
    for kind in ("price_paths", "shortage"):
        titles = _titles(F.FIGURES[kind](_shock(df)))
        assert titles == [f"{p} oxide" for p in (*PRODUCTS, "Ho")], (kind, titles)
    price_axes = F.price_paths(df).axes
    assert len(price_axes) == len(PRODUCTS) + 1
    ho = price_axes[-1]
    assert [ln.get_label() for ln in ho.get_lines()] == ["China-domestic", "ex-China"]
    ratio = F.price_ratio(df)
    assert set(ratio["product"]) == {*PRODUCTS, "Ho"}
    (ax,) = F.spread_ratio(df).axes
    assert "Ho oxide" in [ln.get_label() for ln in ax.get_lines()]
    assert len(F.exports(df).axes) == 2 * (len(PRODUCTS) + 1)
    # and the comparison set of make_figures gets a Ho figure
    root = tmp_path / "results"
    for name, d in (("baseline", df), ("shock", _shock(df))):
        (root / name).mkdir(parents=True)
        d[COLUMNS].to_parquet(root / name / "results.parquet", index=False)
    names = {p.name for p in F.make_figures(root, formats=("png",), kinds=["price_paths"])}
    assert {f"price_{p}.png" for p in (*PRODUCTS, "Ho")} <= names


def test_exports_figure_tells_the_licence_story(licence_runs):
    fig = F.exports(licence_runs, title="licence")
    n = len(PRODUCTS)
    assert len(fig.axes) == 2 * n
    top, bottom = fig.axes[:n], fig.axes[n:]
    assert OUTPUTS["exports"].unit in top[0].get_ylabel() and "exports" in top[0].get_ylabel()
    assert OUTPUTS["export_allowed"].label.split()[0] in bottom[0].get_ylabel()
    assert [ax.get_title() for ax in top] == [f"{p} oxide" for p in PRODUCTS]
    legend = _legend_texts(fig)
    assert {"Japan", "European Union", "United States"} <= set(legend)  # destinations, by the world's names
    assert "10–90 % of 2 runs" in legend
    allowed = {p: ax.get_lines()[0].get_ydata() for p, ax in zip(PRODUCTS, bottom, strict=True)}
    # the licences cut what Dy buyers may import (nothing during the 6-week delay), NdPr is never controlled
    assert np.min(allowed["Dy"]) == pytest.approx(0.0) and np.max(allowed["Dy"]) == pytest.approx(1.0)
    assert np.allclose(allowed["NdPr"], 1.0)
    # exports are a weekly flow: the lines start in week 1, not at the zero of the initial state
    week1 = pd.Timestamp(licence_runs.loc[licence_runs["step"] == 1, "date"].iloc[0])
    starts = {pd.Timestamp(ln.get_xdata()[0]) for ln in top[0].get_lines() if len(ln.get_xdata())}
    assert starts == {week1}


def test_exports_figure_without_export_rows_says_so(two_runs):
    fig = F.exports(two_runs[~two_runs["variable"].isin(["exports", "export_allowed"])])
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "no exports recorded" in texts and "no export rules recorded" in texts


def test_magnet_buildout_draws_magnet_capacity_and_only_where_a_world_has_magnets(two_runs, tmp_path):
    """The magnet capacity figure: China and ex-China by country, labelled from the schema; in a world
    without magnets the whole set leaves it out, and asked for by name it says there is none."""
    runs = pd.concat([run_one("magnets_baseline", s, WEEKS, run_id=f"magnets-s{s}") for s in (1, 2)],
                     ignore_index=True)
    fig = F.magnet_buildout(runs, title="m")
    o = OUTPUTS["magnet_capacity"]
    assert all(o.unit in y for y in _ylabels(fig)) and len(_ylabels(fig)) == 2
    china = fig.axes[0].get_lines()[0].get_ydata()
    cap = runs[(runs["variable"] == "magnet_capacity") & (runs["region"] == "CN")].groupby(["date", "run_id"])["value"].sum()
    assert china[-1] == pytest.approx(cap.groupby("date").median().iloc[-1])
    assert {"Japan", "Vietnam"} <= set(_legend_texts(fig))
    oxide = {p.name for p in F.figure_set(two_runs, tmp_path / "oxide", formats=("png",))}
    assert "capacity_buildout.png" in oxide and "magnet_buildout.png" not in oxide
    empty = F.magnet_buildout(two_runs)
    assert "no magnet stage in this world" in [t.get_text() for ax in empty.axes for t in ax.texts]


def test_ten_products_get_ten_distinct_styles_and_their_stage_in_the_legend():
    """A world with ten products (the magnet world): the spread figure's lines differ in colour, line style or
    marker, one from another, and magnets are labelled as magnets, not oxides."""
    styles = [F.series_style(i) for i in range(16)]
    keys = [(s["color"], str(s["linestyle"]), s["marker"]) for s in styles]
    assert len(set(keys)) == len(keys), "two series drawn alike"
    assert styles[:8] == [F.series_style(i) for i in range(8)] and keys[0] != keys[8]
    from model.model import RareEarthModel

    df = RareEarthModel("magnets_baseline", seed=1, weeks=6).run().results()
    fig = F.spread_ratio(df)
    labels = {ln.get_label() for ln in fig.axes[0].get_lines()}
    assert {"NdFeB magnet", "SmCo magnet", "NdPr oxide"} <= labels and "NdFeB oxide" not in labels, labels
