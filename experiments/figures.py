"""Figures drawn from result tables only (never a live model); labels and units come from the schema."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from model.results import OUTPUTS  # noqa: E402

PRODUCT_ORDER = ["NdPr", "Dy", "Tb"]
REGION_STYLE = {"CN": {"color": "#b2182b", "linestyle": "-"}, "ROW": {"color": "#2166ac", "linestyle": "--"}}


def band(df: pd.DataFrame, variable: str, by: list[str], q: tuple[float, float] = (0.1, 0.9)) -> pd.DataFrame:
    """Median and a quantile band over seeds (run_id) per date and ``by`` columns."""
    d = df[df["variable"] == variable]
    g = d.groupby(["date", *by])["value"]
    out = g.median().rename("median").to_frame()
    out["lo"] = g.quantile(q[0])
    out["hi"] = g.quantile(q[1])
    return out.reset_index()


def price_chart(df: pd.DataFrame, path: str | Path | None = None, title: str = "") -> Figure:
    """Oxide prices, China-domestic beside ex-China, one panel per product (median, 10-90 % band)."""
    out = OUTPUTS["price"]
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    axes = fig.subplots(1, 3)
    b = band(df, "price", ["region", "product"])
    for ax, prod in zip(axes, PRODUCT_ORDER, strict=True):
        for region, style in REGION_STYLE.items():
            s = b[(b["product"] == prod) & (b["region"] == region)]
            if s.empty:
                continue
            label = "China-domestic" if region == "CN" else "ex-China"
            ax.plot(s["date"], s["median"], label=label, **style)
            if df["run_id"].nunique() > 1:
                ax.fill_between(s["date"], s["lo"], s["hi"], color=style["color"], alpha=0.15, linewidth=0)
        ax.set_title(f"{prod} oxide")
        ax.set_ylabel(f"{out.label} ({out.unit})")
        ax.tick_params(axis="x", labelrotation=30)
        ax.grid(alpha=0.3)
    axes[0].legend(frameon=False)
    if title:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(path, dpi=150)
    return fig
