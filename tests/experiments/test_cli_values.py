"""Command-line values are checked like file values (issue 14): every bad option value exits 2 with one
message naming the option as typed, the value and what is allowed, before anything runs; no traceback,
no silent acceptance. A design is sized arithmetically and refused above the limit before it is built.

Nothing here runs the model: the run functions are replaced by ones that fail the test, so a value that
slipped through fails at once instead of running (or hanging on ``--weeks 1000000000``).
"""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from experiments import sensitivity as sa
from experiments import sweep as sw
from experiments.cli import MAX_SEED_COUNT, SEED_MAX, app
from model.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "experiments" / "specs" / "demo.toml")
WEEKS_MAX = next(m.le for m in Scenario.model_fields["weeks"].metadata if getattr(m, "le", None))  # the file's
REFUSED = "tcp://127.0.0.1:1"  # nothing listens on port 1: the connection is refused at once


def _ran(*args, **kwargs):
    raise AssertionError("a bad value got through: a run started")


@pytest.fixture(autouse=True)
def no_runs(monkeypatch):
    """Any run, planned design or sample fails the test instead of running."""
    import experiments.compare
    import experiments.golden
    import experiments.run
    import experiments.validate

    for mod, name in [(experiments.run, "run_model"), (experiments.run, "run_one"), (experiments.compare, "run_one"),
                      (experiments.validate, "run_validation"), (experiments.golden, "check"),
                      (experiments.golden, "update"), (sw, "run_tasks"), (sa, "run_tasks"), (sa, "sample"),
                      (sw.SweepSpec, "points"), (sw.SampleSpec, "points")]:
        monkeypatch.setattr(mod, name, _ran)


def _invoke(args: list[str]):
    return CliRunner().invoke(app, args)


def _assert_exit_2(result, *needles: str) -> str:
    out = result.output
    assert result.exit_code == 2, f"exit {result.exit_code}; output:\n{out}\nexception: {result.exception!r}"
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in out
    message = result.stderr
    assert message.startswith("error: "), message
    for needle in needles:
        assert needle in message, f"{needle!r} not in the message:\n{message}"
    return message


# (arguments, what the message must contain: the option and value as typed, then what is allowed)
BAD = [
    (["run", "baseline", "--weeks", "0"], ["--weeks 0", f"between 1 and {WEEKS_MAX} weeks"]),
    (["run", "baseline", "--weeks", "-3"], ["--weeks -3", f"between 1 and {WEEKS_MAX} weeks"]),
    (["run", "baseline", "--weeks", "1000000000"], ["--weeks 1000000000", f"between 1 and {WEEKS_MAX}"]),
    (["run", "baseline", "--seed", "-1"], ["--seed -1", f"between 0 and {SEED_MAX}"]),
    (["run", "baseline", "--seed", str(2**64)], [f"--seed {2**64}", f"between 0 and {SEED_MAX}"]),
    (["run", "baseline", "--seeds", "5"], ["--seeds 5", "ambiguous", "1-5", "--seed 5"]),
    (["run", "baseline", "--seeds", "1-x"], ["--seeds 1-x", "'1-x'", "range (1-30), a list (1,2,5)"]),
    (["run", "baseline", "--seeds", "1,,3"], ["--seeds 1,,3", "''", "range (1-30)"]),
    (["run", "baseline", "--seeds", "-2"], ["--seeds -2", "range (1-30)"]),
    (["run", "baseline", "--seeds", "30-1"], ["--seeds 30-1", "runs backwards", "1-30"]),
    (["run", "baseline", "--seeds", "1-3,2"], ["--seeds 1-3,2", "seed 2 is given twice"]),
    (["run", "baseline", "--seeds", f"0-{MAX_SEED_COUNT}"], [f"--seeds 0-{MAX_SEED_COUNT}",
                                                               f"{MAX_SEED_COUNT + 1:,} seeds", f"at most {MAX_SEED_COUNT}"]),
    (["run", "baseline", "--seeds", f"1-{2**64}"], [f"--seeds {2**64}", f"between 0 and {SEED_MAX}"]),
    (["run", "baseline", "--seed", "3", "--seeds", "1-2"], ["--seed 3 and --seeds 1-2", "one of them"]),
    (["run", "baseline", "--seeds", "1-2", "--workers", "0"], ["--workers 0", "between 1 and"]),
    (["run-all", "--weeks", "0"], ["--weeks 0", f"between 1 and {WEEKS_MAX}"]),
    (["run-all", "--weeks", str(WEEKS_MAX + 1)], [f"--weeks {WEEKS_MAX + 1}", f"between 1 and {WEEKS_MAX}"]),
    (["compare", "baseline", "myanmar_2025", "--seeds", "0"], ["--seeds 0", f"between 1 and {MAX_SEED_COUNT}"]),
    (["compare", "baseline", "myanmar_2025", "--seeds", "-2"], ["--seeds -2", f"between 1 and {MAX_SEED_COUNT}"]),
    (["compare", "baseline", "myanmar_2025", "--seeds", "10000000"], ["--seeds 10000000", "between 1"]),
    (["compare", "baseline", "myanmar_2025", "--weeks", "0"], ["--weeks 0", f"between 1 and {WEEKS_MAX}"]),
    (["compare", "baseline", "myanmar_2025", "--weeks", "1000000000"], ["--weeks 1000000000", "between 1"]),
    (["validate", "--seeds", "0"], ["--seeds 0", f"between 1 and {MAX_SEED_COUNT}"]),
    (["validate", "--seeds", "10000000"], ["--seeds 10000000", f"between 1 and {MAX_SEED_COUNT}"]),
    (["validate", "--workers", "0"], ["--workers 0", "between 1 and"]),
    (["validate", "--workers", "1000000"], ["--workers 1000000", "between 1 and"]),
    (["golden", "--workers", "0"], ["--workers 0", "between 1 and"]),
    (["golden", "--workers", "-4"], ["--workers -4", "between 1 and"]),
    (["golden", "--scenario", "nowhere"], ["--scenario 'nowhere'", "baseline"]),
    (["sweep", DEMO, "--workers", "0"], ["--workers 0", "between 1 and"]),
    (["sweep", DEMO, "-w", "1000000"], ["--workers 1000000", "between 1 and"]),
    (["sweep", DEMO, "--cluster", "local:0"], ["--cluster local:0", "between 1 and"]),
    (["sweep", DEMO, "--cluster", "local:0", "--dry-run"], ["--cluster local:0", "between 1 and"]),
    (["sweep", DEMO, "--cluster", "local:1000000", "--dry-run"], ["--cluster local:1000000", "between 1 and"]),
    (["sweep", DEMO, "--cluster", "4", "--dry-run"], ["--cluster '4'", "local:N"]),
    (["sweep", DEMO, "--cluster", "local:2", "--scheduler", REFUSED], ["--scheduler", "--cluster local:2", "not both"]),
    (["sweep", DEMO, "--workers", "2", "--cluster", "local:2"], ["--workers 2", "--cluster local:2"]),
    (["sweep", DEMO, "--workers", "2", "--scheduler", REFUSED], ["--workers 2", f"--scheduler {REFUSED}"]),
    (["sweep", DEMO, "--scheduler", "10.0.0.5", "--dry-run"], ["--scheduler '10.0.0.5'", "tcp://HOST:PORT"]),
    (["sweep", DEMO, "--scheduler", "tcp://host:70000", "--dry-run"], ["--scheduler 'tcp://host:70000'", "1-65535"]),
    (["sweep", DEMO, "--scheduler", "http://host:8786"], ["--scheduler 'http://host:8786'", "tcp://HOST:PORT"]),
    (["sweep", DEMO, "--scheduler", REFUSED], [f"--scheduler {REFUSED}", "cannot connect"]),
    (["sweep", DEMO, "--max-runs", "0", "--dry-run"], ["--max-runs 0", "positive"]),
    (["sweep", DEMO, "--max-runs", "17", "--dry-run"], ["18 runs", "limit of 17 runs", "--max-runs"]),
    (["sensitivity", "--method", "morris,sobol"], ["--method 'morris,sobol'", "morris, sobol or both"]),
    (["sensitivity", "--workers", "0"], ["--workers 0", "between 1 and"]),
    (["sensitivity", "--cluster", "local:0"], ["--cluster local:0", "between 1 and"]),
    (["sensitivity", "--scheduler", "nowhere"], ["--scheduler 'nowhere'", "tcp://HOST:PORT"]),
    (["sensitivity", "--scheduler", REFUSED], [f"--scheduler {REFUSED}", "cannot connect"]),
    (["sensitivity", "--max-runs", "-1"], ["--max-runs -1", "positive"]),
    (["sensitivity", "--max-runs", "351"], ["352 runs", "limit of 351 runs"]),
    (["figures", "--formats", "jpg"], ["--formats 'jpg'", "'jpg' is not a format", "pdf, svg, png"]),
    (["figures", "--formats", " , "], ["--formats ' , '", "pdf, svg, png"]),
    (["figures", "--kind", "pie"], ["--kind 'pie'", "price_paths"]),
]


@pytest.mark.parametrize(("args", "needles"), BAD, ids=[" ".join(a).replace(DEMO, "demo.toml") for a, _ in BAD])
def test_bad_values_exit_2_naming_option_value_and_what_is_allowed(tmp_path, monkeypatch, args, needles):
    monkeypatch.chdir(tmp_path)  # default output folders (results/...) would land here
    _assert_exit_2(_invoke(args), *needles)
    assert not any(tmp_path.iterdir()), f"something was written: {list(tmp_path.iterdir())}"


def _options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and not p.is_flag]


def test_every_value_option_of_every_command_has_a_bad_value_case():
    """The class, not the examples: each numeric or enumerated option (and every new one) needs a case."""
    group = typer.main.get_command(app)
    checked_elsewhere = {"--out"}  # folders: written where the user says (output paths are checked there)
    missing = []
    for name, command in group.commands.items():
        for opt in _options(command):
            if set(opt.opts) & checked_elsewhere:
                continue
            if not any(args[0] == name and set(opt.opts) & set(args) for args, _ in BAD):
                missing.append(f"ree {name} {opt.opts[0]}")
    assert not missing, f"no bad-value case for: {', '.join(missing)}"


def test_good_values_at_the_bounds_pass_the_checks(tmp_path, monkeypatch):
    """The bounds are inclusive: the last allowed value reaches the run (here: the stand-in that fails)."""
    monkeypatch.chdir(tmp_path)
    for args in (["run", "baseline", "--weeks", str(WEEKS_MAX), "--seed", str(SEED_MAX)],
                 ["run", "baseline", "--weeks", "1", "--seed", "0"],
                 ["run", "baseline", "--seeds", f"{SEED_MAX - MAX_SEED_COUNT + 1}-{SEED_MAX}", "--workers", "1"],
                 ["compare", "baseline", "myanmar_2025", "--seeds", str(MAX_SEED_COUNT), "--weeks", "1"],
                 ["validate", "--seeds", "1", "--workers", "1"]):
        r = _invoke(args)
        assert isinstance(r.exception, AssertionError) and "a run started" in str(r.exception), (args, r.output)


def test_the_weeks_bound_is_the_scenario_files(monkeypatch):
    """--weeks shares the scenario schema's constraint: tightening the schema tightens the option."""
    from annotated_types import Le

    field = Scenario.model_fields["weeks"]
    monkeypatch.setattr(field, "metadata", [*field.metadata, Le(100)])
    _assert_exit_2(_invoke(["run", "baseline", "--weeks", "101"]), "--weeks 101", "between 1 and 100 weeks")


def test_console_script_exits_2_without_traceback(tmp_path):
    """What a user types: the installed ``ree`` in a fresh process."""
    import subprocess
    import sys

    ree = Path(sys.executable).parent / "ree"
    for args, needle in ((["run", "baseline", "--seed", "-1"], "--seed -1"),
                         (["compare", "baseline", "baseline", "--seeds", "0"], "--seeds 0"),
                         (["sweep", DEMO, "--cluster", "local:0", "--dry-run"], "--cluster local:0")):
        proc = subprocess.run([str(ree), *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert needle in proc.stderr and "Traceback" not in proc.stderr + proc.stdout, proc.stderr


# ------------------------------------------------------------------------------------------ design size
def _grid_spec(tmp_path: Path, values: int, keys: int, extra: str = "") -> Path:
    keys_ = ["behaviour.full_cost_markup", "behaviour.site_entry_rate", "behaviour.demand_growth_per_year",
             "behaviour.thrift_rate_per_week", "behaviour.private_cost_of_capital", "behaviour.project_life_years",
             "behaviour.retaliation_weeks"][:keys]
    lines = ['name = "big"', 'scenario = "baseline"', "weeks = 52", "seeds = [1]", extra, "[grid]"]
    lines += [f'"{k}" = [{", ".join(str(0.01 * (i + 1)) for i in range(values))}]' for k in keys_]
    p = tmp_path / "big.toml"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_dry_run_of_a_10_million_point_grid_is_refused_before_it_is_built(tmp_path):
    spec = _grid_spec(tmp_path, values=10, keys=7)  # 10^7 grid points; points() would fail the test
    msg = _assert_exit_2(_invoke(["sweep", str(spec), "--dry-run", "--out", str(tmp_path / "o")]),
                         "10,000,000 runs", "1 scenario x 10,000,000 grid points (10 x 10 x 10 x 10 x 10 x 10 x 10)",
                         f"limit of {sw.MAX_RUNS:,} runs", "--max-runs")
    assert str(spec) in msg
    _assert_exit_2(_invoke(["sweep", str(spec), "--out", str(tmp_path / "o")]), "10,000,000 runs")
    assert not (tmp_path / "o").exists()


def test_a_million_samples_are_refused_before_sampling(tmp_path):
    p = tmp_path / "s.toml"  # no seeds: the scenario's own (baseline has 10)
    p.write_text('scenario = "baseline"\n[sample]\nn = 1000000\n[sample.ranges]\n'
                 '"behaviour.full_cost_markup" = [0.6, 0.85]\n')
    n_seeds = len(sw.load_scenario("baseline").seeds)
    _assert_exit_2(_invoke(["sweep", str(p), "--dry-run"]), f"{n_seeds * 10**6:,} runs",
                   f"({n_seeds} seeds of the 1 scenario) x 1,000,000 sample points")


def test_max_runs_raises_the_limit(tmp_path, monkeypatch):
    monkeypatch.undo()  # the real design and describe: 18 runs of the demo spec
    r = _invoke(["sweep", DEMO, "--dry-run", "--max-runs", "18", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("sweep demo: 18 runs")


@pytest.mark.parametrize("raw", [
    {"scenarios": ["baseline", "myanmar_2025"], "weeks": 2,
     "grid": {"behaviour.full_cost_markup": [0.6, 0.7, 0.8], "behaviour.site_entry_rate": [0.02, 0.04]},
     "sample": {"n": 3, "ranges": {"armed_groups.KIA.levy_usd_per_kg": [3.0, 6.0]}}, "seeds": [1, 2]},
    {"scenarios": ["baseline", "myanmar_2025"], "weeks": 2, "grid": {"behaviour.full_cost_markup": [0.6, 0.7]}},
    {"scenario": "baseline", "weeks": 2},
])
def test_design_size_is_the_number_of_planned_runs(monkeypatch, raw):
    monkeypatch.undo()
    spec = sw.parse_spec(raw, source="spec.toml")
    total, how = sw.design_size(spec)
    assert total == len(sw.plan(spec)), how


@pytest.mark.parametrize(("methods", "second_order"), [(["morris"], False), (["sobol"], False), (["sobol"], True),
                                                       (["morris", "sobol"], True)])
def test_sensitivity_size_is_salibs_sample_size(monkeypatch, methods, second_order):
    monkeypatch.undo()
    spec = sa.SensitivitySpec(name="t", scenario="baseline", seeds=[1, 2],
                              parameters={"behaviour.full_cost_markup": (0.6, 0.85),
                                          "behaviour.site_entry_rate": (0.01, 0.06),
                                          "armed_groups.KIA.levy_usd_per_kg": (2.5, 9.0)},
                              morris={"trajectories": 3}, sobol={"n": 4, "second_order": second_order})
    total, how = sa.design_size(spec, methods)
    assert total == sum(len(sa.sample(spec, m)) for m in methods) * len(spec.seeds), how


def test_a_huge_sobol_design_is_refused_before_sampling(tmp_path):
    p = tmp_path / "sa.toml"
    p.write_text('scenario = "baseline"\nseeds = [1]\n[parameters]\n"behaviour.full_cost_markup" = [0.6, 0.85]\n'
                 '"behaviour.site_entry_rate" = [0.01, 0.06]\n[sobol]\nn = 1000000\nsecond_order = true\n')
    _assert_exit_2(_invoke(["sensitivity", str(p), "--method", "sobol", "--out", str(tmp_path / "o")]),
                   "6,000,000 runs", "sobol n 1,000,000 x (2 x 2 parameters + 2)", f"limit of {sw.MAX_RUNS:,}")
    assert not (tmp_path / "o").exists()


def test_the_limit_is_documented():
    readme = (ROOT / "README.md").read_text()
    assert f"{sw.MAX_RUNS:,} runs" in readme and "--max-runs" in readme
    assert f"{sw.MAX_RUNS:,}" in sw.__doc__


def test_golden_module_command_checks_workers(capsys):
    """``python -m experiments.golden`` (the README's other entry point) shares the --workers bounds."""
    from experiments import golden

    with pytest.raises(SystemExit) as exc:
        golden.main(["--workers", "0"])
    assert exc.value.code == 2
    assert "--workers 0: must be between 1 and" in capsys.readouterr().err


@pytest.mark.parametrize("error", [OSError("Timed out trying to connect to tcp://127.0.0.1:8786 after 10 s"),
                                   TimeoutError()])
def test_a_scheduler_that_accepts_but_never_answers_is_a_config_error(monkeypatch, error):
    """Past the connect check, Dask's own connection failure also becomes a message naming the address."""
    import distributed

    from model.params import ConfigError

    def client(*args, **kwargs):
        raise error

    monkeypatch.setattr(distributed, "Client", client)
    with pytest.raises(ConfigError, match=r"--scheduler tcp://127\.0\.0\.1:8786: cannot connect"):
        list(sw._dask_runs([], "tcp://127.0.0.1:8786", None))
