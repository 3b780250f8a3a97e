"""``ree compare`` and the names the research layer reads from a table: products and regions come from the
table and its world, never from a list in experiments/."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments import labels
from experiments.cli import app
from experiments.compare import key_outputs
from experiments.run import run_one
from model.params import load_world

WORLD = load_world()
WEEKS = 20  # licence_one_year's licences start in week 13 and approvals come 6 weeks later


@pytest.fixture(scope="module")
def baseline() -> pd.DataFrame:
    return run_one("baseline", 1, WEEKS)


def test_labels_follow_the_world(baseline):
    assert labels.products(baseline) == list(WORLD.product_names)
    assert labels.market_regions(baseline) == list(WORLD.region_ids)
    assert labels.import_pairs(baseline) == [(r.id, r.imports_from) for r in WORLD.regions if r.imports_from]
    assert labels.region_name("ROW", baseline) == "ex-China" and labels.state_name("JP") == "Japan"
    assert labels.state_name("XX") == "XX"  # unknown codes keep their code
    # a product the world does not know is kept, after the world's own, whatever the table's row order
    extra = baseline[baseline["product"] == "Dy"].assign(product="Ho")
    shuffled = pd.concat([extra, baseline], ignore_index=True).sample(frac=1.0, random_state=1)
    assert labels.products(shuffled) == [*WORLD.product_names, "Ho"]


def test_key_outputs_cover_every_product_and_region(baseline):
    out = key_outputs(baseline)
    price = baseline[baseline["variable"] == "price"]
    for region in WORLD.region_ids:
        for p in WORLD.product_names:
            s = price[(price["region"] == region) & (price["product"] == p)]["value"]
            assert out[f"{p} {region} price, mean (USD/kg)"] == pytest.approx(s.mean())
            assert out[f"{p} {region} price, peak (USD/kg)"] == pytest.approx(s.max())
    for p in WORLD.product_names:
        assert f"{p} shortage, total (t)" in out
        assert out[f"{p} China's exports, total (t)"] > 0
    extra = baseline[baseline["product"] == "Dy"].assign(product="Ho")
    out_ho = key_outputs(pd.concat([baseline, extra], ignore_index=True))
    assert out_ho["Ho ROW price, peak (USD/kg)"] == pytest.approx(out["Dy ROW price, peak (USD/kg)"])


def _row(text: str, name: str) -> tuple[float, float, str]:
    """(first scenario, second scenario, change) of one line of the comparison."""
    line = next(ln for ln in text.splitlines() if ln.startswith(name))
    a, b, *change = line[len(name):].split()
    return float(a.replace(",", "")), float(b.replace(",", "")), "".join(change)


def test_cli_compare_shows_the_licence_wedge():
    r = CliRunner().invoke(app, ["compare", "baseline", "licence_one_year", "--seeds", "1", "--weeks", str(WEEKS)])
    assert r.exit_code == 0, r.output
    assert r.output.startswith(f"baseline vs licence_one_year: medians over seeds 1..1, {WEEKS} weeks")
    for p in WORLD.product_names:
        assert f"{p} ROW price, peak (USD/kg)" in r.output
    # licences hold Dy back from ex-China buyers: its ex-China price rises, China's exports fall
    base, lic, change = _row(r.output, "Dy ROW price, peak (USD/kg)")
    assert lic > 1.5 * base and change.startswith("+")
    base, lic, change = _row(r.output, "Dy China's exports, total (t)")
    assert lic < base and change.startswith("-")
    # NdPr is not on the list: its oxide exports are not rationed (on the oxide world they stay within 5 %; on the
    # magnet world they rise ~14 %, as makers abroad, short of licensed Chinese magnets, make more and buy NdPr)
    base, lic, change = _row(r.output, "NdPr China's exports, total (t)")
    assert lic >= 0.95 * base, (base, lic)
    _, share, _ = _row(r.output, "China share of refining, last year")
    assert 0.5 < share < 1.0  # a share keeps its decimals


def test_cli_compare_a_scenario_with_itself():
    r = CliRunner().invoke(app, ["compare", "baseline", "baseline", "--seeds", "1", "--weeks", "3"])
    assert r.exit_code == 0, r.output
    assert "baseline (2)" in r.output.splitlines()[1]
    changes = [ln.split()[-1] for ln in r.output.splitlines()[2:] if ln.split()[-1].endswith("%")]
    assert changes and set(changes) <= {"+0%", "-0%"}
