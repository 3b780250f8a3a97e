"""Issue 3, item 1: policies and events as objects — round trips, errors that name the field, and what
each one changes (rules and agents' options, never an output) while it is in force."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from model.model import RareEarthModel
from model.params import PRODUCTS, ConfigError, Product, Region
from model.policies import (
    REGISTRY,
    ConflictEscalation,
    Election,
    ExportControl,
    Financing,
    MiningHalt,
    PermitStreamlining,
    PriceFloor,
    RouteChange,
    Sanction,
    SiteSeizure,
    Stockpile,
    StockpileRelease,
    TimelineItem,
    Traceability,
    field_specs,
    parse_item,
    parse_timeline,
)
from model.rules import OreBan, Rules
from model.scenario import list_scenarios, load_scenario

START = dt.date(2024, 1, 1)
DY, TB = PRODUCTS.index(Product.DY), PRODUCTS.index(Product.TB)


def _varied(cls: type[TimelineItem]) -> TimelineItem:
    """An instance whose bounded numbers sit strictly inside their bounds and away from the defaults."""
    kw = {}
    for name, spec in field_specs(cls).items():
        lo = spec.get("ge", spec.get("gt"))
        hi = spec.get("le", spec.get("lt"))
        if lo is None or spec["annotation"] not in (int, float):
            continue
        hi = hi if hi is not None else lo + 100
        value = lo + 0.37 * (hi - lo)
        kw[name] = int(round(value)) if spec["annotation"] is int else value
    return cls(start=dt.date(2025, 3, 3), end=dt.date(2025, 9, 1), note="round trip", **kw)


# ================================================================================================ round trips
@pytest.mark.parametrize("name", list(REGISTRY))
def test_round_trip_defaults(name):
    cls = REGISTRY[name]
    item = cls(start=START)
    d = item.to_dict()
    assert d["type"] == name
    json.dumps(d)  # plain data, writable to a file
    back = TimelineItem.from_dict(d)
    assert type(back) is cls
    assert back == item
    assert back.to_dict() == d


@pytest.mark.parametrize("name", list(REGISTRY))
def test_round_trip_non_default_values(name):
    item = _varied(REGISTRY[name])
    back = TimelineItem.from_dict(json.loads(json.dumps(item.to_dict())))
    assert back == item, (item, back)
    specs = field_specs(REGISTRY[name])
    if any("ge" in v or "gt" in v for v in specs.values()):
        assert any(getattr(item, k) != v["default"] for k, v in specs.items()), "nothing differs from the defaults"


def test_round_trip_of_nested_and_listed_fields():
    items = [
        Election(start=START, ends=["seed F24", "Sanction"],
                 begins=[{"type": "RouteChange", "action": "open", "corridor": "northern_corridor"}]),
        RouteChange(start=START, edges=[["border_pianma", "yunnan"]], between=["MM", "CN"]),
        ExportControl(start=START, products=["NdPr"], mode="quota", quota_t_per_week=12.5,
                      destinations=["US", "JP"], exempt=["JP"]),
        Financing(start=START, instruments=["equity", "offtake"], eligible_hosts=["TH"], selected=["th_udon_thani"]),
        Stockpile(start=START, products=["Dy"], rapid_response=False),
    ]
    for item in items:
        assert TimelineItem.from_dict(item.to_dict()) == item


@pytest.mark.parametrize("scenario", list_scenarios())
def test_shipped_timelines_round_trip(scenario):
    sc = load_scenario(scenario)
    items = parse_timeline(sc.timeline)
    assert len(items) == len(sc.timeline)
    again = parse_timeline([it.to_dict() for it in items])
    assert again == items


# ============================================================================================ parse errors
@pytest.mark.parametrize("name", list(REGISTRY))
def test_out_of_bounds_values_name_the_field(name):
    cls = REGISTRY[name]
    bounded = {k: v for k, v in field_specs(cls).items() if "ge" in v or "gt" in v or "le" in v}
    for field, spec in bounded.items():
        bad = (spec.get("ge", spec.get("gt")) - 1) if ("ge" in spec or "gt" in spec) else spec["le"] + 1
        with pytest.raises(ConfigError) as err:
            parse_item({"type": name, "start": "2024-02-05", field: bad})
        assert field in str(err.value), str(err.value)
        assert name in str(err.value)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_unknown_and_mistyped_fields_name_the_field(name):
    with pytest.raises(ConfigError, match=r"colour.*unknown key"):
        parse_item({"type": name, "start": "2024-02-05", "colour": "red"})
    with pytest.raises(ConfigError, match="start"):
        parse_item({"type": name, "start": "next tuesday"})
    with pytest.raises(ConfigError, match="start"):
        parse_item({"type": name})


def test_unknown_type_lists_the_allowed_ones():
    with pytest.raises(ConfigError) as err:
        parse_item({"type": "Embargo", "start": "2024-02-05"})
    msg = str(err.value)
    assert "Embargo" in msg and all(n in msg for n in REGISTRY)


def test_field_specs_expose_declared_bounds():
    spec = field_specs(ExportControl)
    assert spec["approval_rate"]["ge"] == 0.0 and spec["approval_rate"]["le"] == 1.0
    assert spec["delay_weeks"]["le"] == 52 and spec["approval_rate"]["default"] == 0.135
    assert "start" not in spec and "note" not in spec
    assert field_specs(Financing)["budget_musd"]["default"] == 2200.0  # seed F5


# ====================================================================================== rules, unit level
POOL = {"country": "MM", "state_linked": True, "controller": "NDAK", "licensed": False}


@pytest.mark.parametrize(("ban", "refiner", "pool", "blocked"), [
    (OreBan(frozenset({"JP"}), "MM", state_linked_only=True), "JP", POOL, True),
    (OreBan(frozenset({"JP"}), "MM", state_linked_only=True), "CN", POOL, False),  # China does not comply
    (OreBan(frozenset({"JP"}), "MM", state_linked_only=True), "JP", {**POOL, "state_linked": False}, False),
    (OreBan(frozenset({"JP"}), "MM", controller="KIA"), "JP", POOL, False),
    (OreBan(frozenset({"JP"}), "MM", controller="NDAK"), "JP", POOL, True),
    (OreBan(frozenset({"JP"}), "MM", controller="NDAK"), "JP", {**POOL, "country": "LA"}, False),
    (OreBan(frozenset({"JP"}), "MM", controller="NDAK", exempt_licensed=True), "JP", {**POOL, "licensed": True}, False),
    (OreBan(frozenset({"JP"}), "MM", controller="NDAK", exempt_licensed=False), "JP", {**POOL, "licensed": True}, True),
])
def test_ore_ban_blocks_exactly_its_targets(ban, refiner, pool, blocked):
    assert ban.blocks(refiner, pool) is blocked


def test_rules_reset_every_week():
    rules = Rules()
    rules.export_cap[DY] = 0.0
    rules.audited_only.add("JP")
    rules.ore_bans.append(OreBan(frozenset({"JP"})))
    rules.reset_week()
    assert rules.export_cap.tolist() == [1.0, 1.0, 1.0] and not rules.audited_only and not rules.ore_bans


# ================================================================================== lifecycles in a model
def _model(*items, weeks: int = 30, scenario: str = "baseline", seed: int = 1) -> RareEarthModel:
    return RareEarthModel(scenario, seed=seed, weeks=weeks, policies=list(items))


def test_export_ban_stops_chinese_exports_of_listed_products_only():
    m = _model(ExportControl(start="2024-01-08", mode="ban", products=["Dy", "Tb"]), weeks=6)
    m.run(3)
    assert m.rules.export_cap[DY] == 0.0 and m.rules.export_cap[TB] == 0.0 and m.rules.export_cap[0] == 1.0
    china = [r for r in m.refiners if r.home_region == Region.CN]
    assert sum(r.sold[Region.ROW][DY] + r.sold[Region.ROW][TB] for r in china) == 0.0
    assert sum(r.sold[Region.ROW][0] for r in china) > 0  # NdPr still ships


def test_export_licence_waits_for_the_delay_then_approves_some():
    ctl = ExportControl(start="2024-01-08", mode="licence", approval_rate=0.5, delay_weeks=4)
    m = _model(ctl, weeks=12)
    caps = []
    for _ in range(10):
        m.step()
        caps.append(float(m.rules.export_cap[DY]))
    first = next(i for i, d in enumerate(m.results().drop_duplicates("step")["date"]) if d >= np.datetime64("2024-01-08")) - 1
    assert caps[first:first + 4] == [0.0] * 4, caps  # nothing ships while applications wait
    later = caps[first + 4:]
    assert 0.3 <= np.mean(later) <= 0.7, caps  # about half the applications approved


def test_export_quota_caps_chinese_exports():
    m = _model(ExportControl(start="2024-01-08", mode="quota", products=["NdPr"], quota_t_per_week=10.0), weeks=8)
    for _ in range(6):
        m.step()
        exported = sum(r.sold[Region.ROW][0] for r in m.refiners if r.home_region == Region.CN)
        assert exported <= 10.0 + 1e-9, exported


def test_route_closure_closes_edges_while_active_and_reopens_them():
    m = _model(RouteChange(start="2024-01-15", end="2024-03-04", action="close", between=["MM", "CN"]), weeks=12)
    edges = m.routes.edges_matching(countries=("MM", "CN"))
    assert edges and m.routes.edge_open[edges].all()
    m.run(3)
    assert not m.routes.edge_open[edges].any()
    assert m.latest("myanmar_ore_to_china") == 0.0
    m.run(8)
    assert m.routes.edge_open[edges].all()


def test_corridor_opens():
    m = _model(RouteChange(start="2024-01-08", action="open", corridor="northern_corridor"), weeks=3)
    edges = m.routes.edges_matching(corridor="northern_corridor")
    assert not m.routes.edge_open[edges].all()
    m.run(2)
    assert m.routes.edge_open[edges].all()


def test_site_seizure_and_mining_halt():
    m = _model(SiteSeizure(start="2024-01-08", areas=["pangwa"]),
               MiningHalt(start="2024-01-15", end="2024-02-26", share=0.5), weeks=12)
    pangwa = np.flatnonzero(np.array(m.fleet.node) == "pangwa")
    m.run(1)
    assert (m.fleet.controller[pangwa] == "KIA").all() and not m.fleet.state_linked[pangwa].any()
    m.run(1)
    kia = np.flatnonzero(m.fleet.controller == "KIA")
    halt = next(p for p in m.active if isinstance(p, MiningHalt))
    assert len(halt._sites) == round(0.5 * kia.size)
    assert m.fleet.halted[halt._sites].all() and m.fleet.sold[halt._sites].sum() == 0.0
    m.run(7)
    assert not any(isinstance(p, MiningHalt) for p in m.active)
    assert m.fleet.sold[halt._sites].sum() > 0  # mining resumes after the end date


def test_conflict_escalation_forces_the_state_then_lets_go():
    m = _model(ConflictEscalation(start="2024-01-08", end="2024-02-05", level="fighting"), weeks=10)
    m.run(4)
    assert m.latest("conflict", "KIA") == 2
    m.run(2)
    assert m.group_by_id["KIA"].forced_conflict is None


def test_stockpile_mandate_and_release():
    m = _model(Stockpile(start="2024-01-08", end="2024-06-03", actor="JP", target_days=60, fill_weeks=4),
               StockpileRelease(start="2024-04-01", end="2024-05-13", states=["JP"]), weeks=26)
    jp = m.state_by_id["JP"]
    m.run(12)
    assert jp.stock_mandate is not None and jp.stockpile.sum() > 0
    peak = jp.stockpile.copy()
    m.run(6)
    assert jp.stockpile.sum() < peak.sum()  # the ordered release sells stock
    m.run(7)
    assert jp.stock_mandate is None


def test_rule_setting_policies_set_their_rules():
    m = _model(Sanction(start="2024-01-08", compliers=["JP"], target_controllers=["KIA"]),
               Traceability(start="2024-01-08", states=["TH"], audit_cost_usd_per_kg=0.7),
               PermitStreamlining(start="2024-01-08", states=["US"], factor=0.5),
               PriceFloor(start="2024-01-08", states=["US"], floor_usd_per_kg=110.0), weeks=4)
    m.run(2)
    r = m.rules
    assert any(b.controller == "KIA" and "JP" in b.importers and "US" in b.importers for b in r.ore_bans)
    assert any(b.state_linked_only for b in r.ore_bans)
    assert r.audited_only == {"TH"} and r.audit_cost["TH"] == pytest.approx(0.7)
    assert r.lead_time_factor_for("US") == 0.5 and r.lead_time_factor_for("JP") == 1.0
    assert r.floor_for("US")[0] == 110.0 and r.floor_for("JP") is None
    assert m.latest("floor_payments", "US") >= 0.0


def test_election_ends_listed_policies_and_begins_new_ones():
    m = _model(Sanction(start="2024-01-08", note="seed F24"),
               Election(start="2024-02-05", ends=["seed F24"],
                        begins=[{"type": "RouteChange", "action": "open", "corridor": "northern_corridor"}]),
               weeks=10)
    m.run(3)
    assert any(isinstance(p, Sanction) for p in m.active)
    m.run(3)
    assert not any(isinstance(p, Sanction) for p in m.active)
    assert m.routes.edge_open[m.routes.edges_matching(corridor="northern_corridor")].all()


def test_financing_selects_by_the_deadline_and_starts_building():
    fin = Financing(start="2024-01-08", selection_deadline_weeks=4, min_cover_ratio=0.0, budget_musd=1000.0,
                    eligible_hosts=["TH", "LA", "US"])
    m = _model(fin, weeks=10)
    m.run(3)
    assert fin.selected == []
    m.run(4)
    assert fin.selected, m.events
    for rid in fin.selected:
        plant = m.refiner_by_id[rid]
        assert plant.status == "building" and plant.financed_by == fin.lender
    spent = sum(m.refiner_by_id[r].spec.capex_musd * fin.max_share_of_capex for r in fin.selected)
    assert spent <= fin.budget_musd


def test_chinas_own_rule_tightens_licences_when_rivals_sanction():
    """China acts by its own rule (not a script): a rival's sanction halves its licence approvals."""
    m = _model(ExportControl(start="2024-01-08", approval_rate=0.5, delay_weeks=0),
               Sanction(start="2024-03-04"), weeks=14)
    cn = m.state_by_id["CN"]
    m.run(6)
    assert cn.licence_tightening == 1.0
    m.run(4)
    assert cn.licence_tightening == 0.5
    assert any("tightens" in text for _, text in m.events)


def test_two_overlapping_policies_of_one_kind_end_independently():
    """Two halts active together; the first to end is removed from the active list (found by the
    property test: removal compared the policies' private numpy arrays)."""
    lasting = MiningHalt(start="2024-01-01", actor="KIA")
    ending = MiningHalt(start="2024-01-01", end="2024-01-15", actor="KIA")
    model = RareEarthModel("baseline", seed=0, weeks=6, policies=[lasting, ending])
    model.run(6)
    assert [p is lasting for p in model.active] == [True]
