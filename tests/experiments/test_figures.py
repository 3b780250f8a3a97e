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
from model.results import COLUMNS, OUTPUTS

WEEKS = 13


@pytest.fixture(scope="module")
def two_runs() -> pd.DataFrame:
    return pd.concat([run_one("baseline", s, WEEKS, run_id=f"baseline-s{s}") for s in (1, 2)], ignore_index=True)


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
    r = F.price_ratio(two_runs)
    p = two_runs[two_runs["variable"] == "price"].pivot_table(index=["run_id", "date", "product"],
                                                              columns="region", values="value")
    np.testing.assert_allclose(r.set_index(["run_id", "date", "product"])["value"].sort_index(),
                               (p["ROW"] / p["CN"]).sort_index())


def test_lines_are_distinguishable_without_colour(two_runs):
    fig = F.shortage(_shock(two_runs))
    lines = [ln for ln in fig.axes[1].get_lines() if ln.get_label() in ("Japan", "United States")]
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
    for folder in ("baseline", "shock", "sweeps/s/baseline"):
        for kind in F.FIGURES:
            assert f"{folder}/{kind}.png" in names
    assert {"comparison/price_NdPr.png", "comparison/price_Dy.png", "comparison/price_Tb.png"} <= names
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
