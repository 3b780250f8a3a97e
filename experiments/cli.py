"""The ``ree`` command line.

Every command turns a bad scenario or world file into a message that names the field and what is
allowed, with exit code 2 and no traceback.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from pathlib import Path

import typer

from model.params import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Agent-based model of the geopolitical rare-earth market.")
log = logging.getLogger("ree")


def friendly(fn):
    """Report configuration errors as a clear message and exit 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None

    return wrapper


def _summary(df, scenario: str, seed: int, seconds: float) -> str:
    from model.results import series

    lines = [f"{scenario} (seed {seed}): {df['step'].max()} weeks, {len(df):,} rows in {seconds:.1f} s"]
    for region in ("CN", "ROW"):
        parts = []
        for p in ("NdPr", "Dy", "Tb"):
            s = series(df, "price", region, p)
            parts.append(f"{p} {s.iloc[0]:.0f}->{s.iloc[-1]:.0f} (max {s.max():.0f})")
        name = "China-domestic" if region == "CN" else "ex-China      "
        lines.append(f"  {name} USD/kg: " + ", ".join(parts))
    share = series(df, "china_refined_share")
    lines.append(f"  China share of refined output: median {share.median():.3f}")
    short = df[df["variable"] == "shortage"].groupby("product")["value"].sum()
    lines.append("  total shortage (t): " + ", ".join(f"{p} {short.get(p, 0.0):.0f}" for p in ("NdPr", "Dy", "Tb")))
    return "\n".join(lines)


def _run_and_save(scenario: str, seed: int | None, weeks: int | None, out: Path) -> None:
    from experiments.figures import price_chart
    from experiments.run import atomic_write_json, atomic_write_parquet, provenance, run_model
    from model.scenario import load_scenario

    sc = load_scenario(scenario)
    seed = sc.seeds[0] if seed is None else seed
    t0 = time.perf_counter()
    model = run_model(sc, seed, weeks)
    seconds = time.perf_counter() - t0
    df = model.results()
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_parquet(df, out / "results.parquet")
    prov = provenance(sc, [seed], model.weeks, extra={"wall_seconds": round(seconds, 3),
                                                       "agents": len(model.agents),
                                                       "events": [f"{d}: {t}" for d, t in model.events]})
    atomic_write_json(prov, out / "provenance.json")
    price_chart(df, out / "prices.png", title=f"{sc.name}, seed {seed}")
    typer.echo(_summary(df, sc.name, seed, seconds))
    typer.echo(f"  wrote {out}/results.parquet, provenance.json, prices.png")


@app.command()
@friendly
def run(scenario: str = typer.Argument(..., help="shipped scenario name or path to a scenario TOML"),
        seed: int = typer.Option(None, help="seed (default: the scenario's first seed)"),
        weeks: int = typer.Option(None, help="horizon in weeks (default: the scenario's)"),
        out: Path = typer.Option(None, help="output folder (default: results/SCENARIO)")) -> None:
    """Run one scenario and write results.parquet, provenance.json and prices.png."""
    _run_and_save(scenario, seed, weeks, out or Path("results") / Path(scenario).stem)


@app.command("run-all")
@friendly
def run_all(out: Path = typer.Option(Path("results"), help="output folder"),
            weeks: int = typer.Option(None, help="horizon in weeks (default: each scenario's)")) -> None:
    """Run every shipped scenario (first seed) into OUT/NAME/."""
    from model.scenario import list_scenarios

    for name in list_scenarios():
        _run_and_save(name, None, weeks, out / name)


@app.command()
@friendly
def scenarios() -> None:
    """List the shipped scenarios, one line each."""
    from model.scenario import list_scenarios, load_scenario

    for name in list_scenarios():
        sc = load_scenario(name, check=False)
        typer.echo(f"{name:22s} {sc.start} +{sc.weeks:>3d} wk  {sc.description}")


@app.command()
@friendly
def check(path: str = typer.Argument(..., help="scenario name or TOML path")) -> None:
    """Validate a scenario (and its world) without running it."""
    from model.scenario import load_scenario

    sc = load_scenario(path)
    typer.echo(f"ok: {sc.name} ({len(sc.timeline)} timeline entries, world {sc.world})")


def main() -> None:  # pragma: no cover - console entry point
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
