"""The event log in a class's words: plain sentences with place and country names, and why each matters.

The model logs short technical texts (``CN: closes 1 edges``, ``LA: opens northern_corridor``) built by each
policy's ``describe()``; they stay as they are (the command line, provenance files and tests read them).
The page translates here instead, keyed on the structured data behind each line: the policy object that
began or ended (its class and fields), looked up against the world file's names (states, armed groups,
route nodes, corridors, plants). Lines logged without a policy behind them (a plant coming online, a lender's
choice) are matched by the few patterns the model writes; anything else is shown as the model wrote it.

:class:`Words` knows one world; :meth:`Words.item` words a policy beginning or ending, :meth:`Words.news`
any other line. Each gives a :class:`Told`: the sentence, one line of why it matters, and a label of a few
words for the charts' time axes. Nothing here imports Solara or changes the model.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from model.params import World
from model.policies import (
    BuildProjects,
    ConflictEscalation,
    Election,
    ExportControl,
    Financing,
    FloodSeason,
    ImportBan,
    MiningHalt,
    PermitStreamlining,
    PriceFloor,
    ProjectFinance,
    RouteChange,
    Sanction,
    SiteSeizure,
    Stockpile,
    StockpileRelease,
    TimelineItem,
    Traceability,
    parse_item,
)

# element names (chemistry, not world data): a product named by its symbol is said in full
ELEMENTS = {"La": "lanthanum", "Ce": "cerium", "Pr": "praseodymium", "Nd": "neodymium", "Pm": "promethium",
            "Sm": "samarium", "Eu": "europium", "Gd": "gadolinium", "Tb": "terbium", "Dy": "dysprosium",
            "Ho": "holmium", "Er": "erbium", "Tm": "thulium", "Yb": "ytterbium", "Lu": "lutetium",
            "Sc": "scandium", "Y": "yttrium", "NdPr": "neodymium-praseodymium (NdPr)"}
# state names read after "the" ("the United States", "the European Union")
THE = ("United States", "European Union", "Philippines", "Netherlands", "Rest of")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
SOURCE_CLASS, SOURCE_START, SOURCE_SCENARIO, SOURCE_NEWS = "class", "start", "scenario", "news"


def date_words(d: dt.date) -> str:
    """'3 February 2025'."""
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def listing(items: list[str], conj: str = "and") -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {conj} {items[-1]}"


def weeks_words(n: int) -> str:
    """'26 weeks', or '208 weeks (about 4 years)'."""
    if n >= 78:
        return f"{n} weeks (about {n / 52:.0f} years)"
    if n >= 9:
        return f"{n} weeks (about {n / 4.35:.0f} months)"
    return f"{n} week{'s' if n != 1 else ''}"


def short_plant(name: str) -> str:
    """A plant's or mine's name for a label: 'NE Thailand refinery (Udon Thani)' -> 'NE Thailand', 'Arafura
    Nolans processing and separation' -> 'Arafura Nolans', but 'Lao refinery (hydropower, rail)' -> 'Lao
    refinery'."""
    s = name.split(",")[0].split(" (")[0]
    for suffix in (" processing and separation", " separation plant", " separation", " refinery"):
        if s.endswith(suffix) and " " in s.removesuffix(suffix):  # 'Lao refinery' stays: 'Lao' says too little
            s = s.removesuffix(suffix)
    return s


@dataclass(frozen=True)
class Told:
    """One line of the event log in words."""

    text: str  # the sentence
    why: str  # one short line: why it matters ("" if nothing useful to say)
    label: str  # a few words for a marker on the charts' time axes
    source: str = SOURCE_NEWS  # class (an intervention), start (a start-of-run switch), scenario, news
    date: dt.date | None = None
    week: int = 0
    raw: str = ""  # the model's own log text


class Words:
    """Names from one world, and the sentences built from them."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.states = {s.id: s.name for s in world.states}
        self.groups = {g.id: g.name for g in world.armed_groups}
        self.nodes = {n.id: n for n in world.nodes}
        self.products = {p.name: p for p in world.products}
        self.plants = {r.id: r for r in world.refiners}
        self.mines = {m.id: m for m in world.miners}

    # -- names ----------------------------------------------------------------------------------------
    def state(self, sid: str, the: bool = True) -> str:
        """A state's full name ('China', 'the United States'); an armed group's name; else the id."""
        if sid in self.groups:
            return f"the {self.groups[sid]}" if the else self.groups[sid]
        name = self.states.get(sid, sid)
        return f"the {name}" if the and name.startswith(THE) else name

    def short(self, sid: str) -> str:
        """A label-sized name: the state's name, an armed group's id (KIA)."""
        if sid in self.groups:
            return sid
        name = self.states.get(sid, sid)
        return {"United States": "US", "European Union": "EU"}.get(name, name.split(" (")[0])

    def states_list(self, ids: list[str]) -> str:
        return listing([self.state(s) for s in ids])

    def possessive(self, sid: str) -> str:
        name = self.state(sid)
        return name + ("'" if name.endswith("s") else "'s")

    def product(self, name: str) -> str:
        spec = self.products.get(name)
        if spec is not None and spec.stage == "magnet":
            return f"{name} magnets"
        return ELEMENTS.get(name, name)

    def modelled(self, names: list[str]) -> list[str]:
        """Of the products a policy names, those this world models, in the world's order (all of them as
        given when it models none: the words then say what the policy names)."""
        if self.products and any(p in self.products for p in names):
            return [p for p in self.products if p in names]
        return list(names)

    def products_list(self, names: list[str], forms: list[str] | None = None) -> str:
        """The products a policy names, in words: those this world models (a list that names elements it does
        not model, as the April 2025 list on the oxide world, reads as what the control does here), in the world's
        order, and with
        ``forms`` the magnets that contain them where the world makes magnets."""
        names = self.modelled(names)
        words = listing([ELEMENTS.get(p, p) if p not in self.products else self.product(p) for p in names])
        if forms and "magnet" in forms and (not self.products or any(
                spec.stage == "magnet" for spec in self.products.values())):
            return f"{words} (oxides and every magnet that contains them)" if "oxide" in forms else \
                f"magnets that contain {words}"
        return words

    def node(self, nid: str) -> str:
        """A route node's name from the world, with 'the' before a mine area, border post or port ('the
        Pangwa-Pianma border post', but 'Tengchong / Baoshan, Yunnan')."""
        n = self.nodes.get(nid)
        if n is None:
            return nid.replace("_", " ")
        return f"the {n.name}" if n.kind in ("mine_area", "border", "port") else n.name

    def place(self, nid: str) -> str:
        """A node's short name: 'Pangwa' for 'Pangwa / Chipwi mining area, Kachin'."""
        n = self.nodes.get(nid)
        name = n.name if n is not None else nid.replace("_", " ").title()
        return name.split(" / ")[0].split(" mining")[0].split(",")[0].split(" border")[0]

    def area(self, nid: str) -> str:
        """A mine area as a class says it: 'the Pangwa / Chipwi mining area, Kachin'."""
        return self.node(nid)

    def path(self, edges: list) -> str:
        """A corridor's way in words: 'ore from the mines at Pangwa, Kanpaiti and Momauk can go by the Shan
        State road to the Mekong, Luang Namtha / northern Laos and Vientiane, Laos to Udon Thani ...'."""
        mines = [e.src for e in edges if e.src in self.nodes and self.nodes[e.src].kind == "mine_area"]
        mines = list(dict.fromkeys(mines))
        rest = [n for e in edges for n in (e.src, e.dst) if n not in mines]
        rest = list(dict.fromkeys(rest))
        before = {n: {e.src for e in edges if e.dst == n and e.src not in mines} for n in rest}
        order: list[str] = []
        while len(order) < len(rest):  # the way in travel order (Kahn's topological sort; cycles: as listed)
            ready = [n for n in rest if n not in order and before[n] <= set(order)]
            order.append(ready[0] if ready else next(n for n in rest if n not in order))
        if not order:
            return ""
        via = [self.node(n) for n in order]
        origin = f"ore from the mines at {listing([self.place(m) for m in mines])}" if mines else "trade"
        return f"{origin} can go by {listing(via[:-1])} to {via[-1]}" if len(via) > 1 else f"{origin} can reach {via[0]}"

    def project(self, pid: str) -> tuple[str, list[str], float]:
        """A plant's or mine's name, the names of the planned mines built with it (a plant's own: their offtake
        is it), and their capex together (M USD)."""
        spec = self.plants.get(pid) or self.mines.get(pid)
        if spec is None:
            return pid.replace("_", " "), [], 0.0
        own = [m for m in self.mines.values() if pid in self.plants and m.offtake == pid and m.status == "planned"]
        return spec.name, [m.name for m in own], spec.capex_musd + sum(m.capex_musd for m in own)

    def corridor(self, label: str) -> str:
        """'the Northern Corridor', 'the Pianma road'."""
        words = label.replace("_", " ").strip()
        if "corridor" in words:
            return f"the {words.title()}"
        return f"the {words.title()} route"

    def edges_of(self, item: RouteChange) -> list:
        """The world's route edges a route change acts on (as the model picks them: corridor, countries,
        node pairs)."""
        country = {n.id: n.country for n in self.world.nodes}
        out = []
        for e in self.world.edges:
            if item.corridor and e.corridor == item.corridor:
                out.append(e)
            elif item.between and len(item.between) == 2 and {country.get(e.src), country.get(e.dst)} == set(
                    item.between) and country.get(e.src) != country.get(e.dst):
                out.append(e)
            elif [e.src, e.dst] in item.edges:
                out.append(e)
        return out

    def route(self, e) -> str:
        kind = {"sea": "shipping route", "rail": "railway", "river": "river route"}.get(e.mode, "road")
        return f"the {kind} from {self.node(e.src)} to {self.node(e.dst)}"

    # -- policies and events --------------------------------------------------------------------------
    def item(self, item: TimelineItem, phase: str = "begins", why_prefix: str = "ends", source: str = "",
             date: dt.date | None = None, week: int = 0, raw: str = "") -> Told:
        """A policy or event beginning (``phase="begins"``) or ending (``"ends"``; ``why_prefix`` is the
        model's reason, e.g. 'ends after the election')."""
        words = self._words(item, phase)
        if words is None:  # a type this module does not know: the model's own words
            words = (item.describe() if phase == "begins" else f"{why_prefix}: {item.describe()}", "",
                     type(item).__name__)
        text, why, label = words
        if phase != "begins" and "election" in why_prefix:
            text = f"After the election: {text[0].lower()}{text[1:]}"
        return Told(text, why, label, source, date, week, raw)

    def _words(self, item: TimelineItem, phase: str) -> tuple[str, str, str] | None:
        ends = phase != "begins"
        who = self.state(item.actor)
        Who = who[:1].upper() + who[1:]  # the sentence's first word (no actor: empty)
        if isinstance(item, ExportControl):
            goods = self.products_list(item.products, item.forms)
            named = self.modelled(item.products)
            short = "/".join(named[:4]) + ("…" if len(named) > 4 else "")
            to = f" to {self.states_list(item.destinations)}" if item.destinations else ""
            if ends:
                return (f"{Who} lifts its export controls on {goods}{to}.",
                        "Exports flow freely again: prices inside and outside China should come back together.",
                        f"{self.short(item.actor)} lifts {short} controls")
            if item.mode == "ban":
                return (f"{Who} bans exports of {goods}{to}.",
                        "None of it leaves: buyers elsewhere live off their stocks, and prices outside China soar.",
                        f"{self.short(item.actor)} bans {short} exports")
            if item.mode == "quota":
                return (f"{Who} caps exports of {goods}{to} at {item.quota_t_per_week:,.0f} tonnes a week.",
                        "Buyers outside China share a fixed amount: prices outside China rise above China's.",
                        f"{self.short(item.actor)} {short} quota")
            refused = (f" Licences for {listing(item.refused_end_users)} users are refused."
                       if item.refused_end_users else "")
            return (f"{Who} now requires an export licence for {goods}{to}: about {item.approval_rate:.0%} of the "
                    f"tonnes applied for are approved, after a review of {weeks_words(item.delay_weeks)}.{refused}",
                    "Buyers outside China get only the licensed tonnes, so prices there rise while unsold "
                    "oxide piles up inside China.",
                    f"{self.short(item.actor)} {short} licences")
        if isinstance(item, RouteChange):
            edges = self.edges_of(item)
            leaves_myanmar = any(self.nodes[e.src].country == "MM" for e in edges if e.src in self.nodes)
            if item.between and len(item.between) == 2:
                a, b = item.between
                other = b if a == item.actor else a
                posts = sorted({self.node(n) for e in edges for n in (e.src, e.dst)
                                if n in self.nodes and self.nodes[n].kind == "border"})
                at = f" (the crossings at {listing(posts)})" if posts else ""
                what = f"its border with {self.state(other)}{at}"
                if item.actor not in item.between:
                    what = f"the border between {self.state(a)} and {self.state(b)}{at}"
                short = f"{self.short(a)}–{self.short(b)} border"
            elif item.corridor:
                what = self.corridor(item.corridor)
                way = self.path(edges)
                short = self.corridor(item.corridor).removeprefix("the ")
            else:
                what = listing([self.route(e) for e in edges]) or f"{len(item.edges)} route(s)"
                labels = list(dict.fromkeys(e.corridor for e in edges if e.corridor))
                kind = {"sea": "sea route", "rail": "railway"}.get(edges[0].mode, "road") if edges else "route"
                short = (f"{labels[0].replace('_', ' ').title()} {kind}" if labels else
                         f"{self.place(edges[0].src)} route" if edges else "route")
            opening = item.action == "open"
            if ends:
                opening = not opening
            cargo = "ore from Kachin" if leaves_myanmar else "ore shipped this way"
            road = "road" if leaves_myanmar else "route"
            if opening and not ends:
                why = ("Kachin ore gets another way out, if buyers at its end bid enough for it."
                       if leaves_myanmar else "Trade can take this route now.")
            elif opening:
                why = (f"The road is open again: {cargo} that waited in the yards can move, so expect a surge."
                       if leaves_myanmar else "Trade can take this route again.")
            else:
                why = f"{cargo[0].upper()}{cargo[1:]} must find another {road} or wait."
            if ends:
                verb = "reopens" if opening else "closes again"
                subject = what if what.startswith("the ") else f"the {what}"
                if item.between and item.actor in item.between:
                    subject = f"{self.possessive(item.actor)} {what.removeprefix('its ')}"
                return (f"{subject[0].upper()}{subject[1:]} {verb}.", why, f"{short} {'open' if opening else 'shut'}")
            verb = "opens" if opening else ("blocks" if item.actor in self.groups else "closes")
            way = f": {way}" if item.corridor and opening and way else ""
            return f"{Who} {verb} {what}{way}.", why, f"{short} {'opens' if opening else 'closed'}"
        if isinstance(item, SiteSeizure):
            places = listing([self.area(a) for a in item.areas])
            first = self.place(item.areas[0]) if item.areas else ""
            return (f"{Who} seizes {places}.",
                    "Same mines, same ore, but another armed group now collects the levy and controls the roads.",
                    f"{self.short(item.actor)} takes {first}")
        if isinstance(item, MiningHalt):
            if ends:
                return (f"Mining resumes at the sites {who} had halted.",
                        "Ore that piled up in the yards floods out; prices should fall back.",
                        "mining resumes")
            return (f"{Who} halts mining at {item.share:.0%} of its sites.",
                    "Less ore leaves Kachin: heavy rare earths (Dy, Tb) get scarce for China's refiners.",
                    f"{self.short(item.actor)} halts mining")
        if isinstance(item, ConflictEscalation):
            if ends:
                return (f"The conflict around {who} is no longer forced; it now evolves by itself.",
                        "Mines and roads are halted less often.", "fighting eases")
            says = {"fighting": "Fighting breaks out in the areas of", "tense": "Tension rises in the areas of",
                    "calm": "Calm returns to the areas of"}[item.level]
            why = ("Fighting halts mines and blocks roads: less ore gets out." if item.level != "calm"
                   else "Mines and roads work normally.")
            return f"{says} {who}.", why, f"{item.level} ({self.short(item.actor)})"
        if isinstance(item, FloodSeason):
            months = f"{MONTHS[item.from_month - 1]} to {MONTHS[item.to_month - 1]}"
            places = listing([self.area(a).split(" / ")[0].split(" mining")[0] for a in item.areas])
            if ends:
                return f"The yearly flood seasons in {places} end.", "Mining is no longer stopped by the rains.", \
                    "floods end"
            return (f"Every year from {months}, floods stop about {item.share:.0%} of the mine sites in {places}.",
                    "Shipments surge before the rains and dip during them.", "flood seasons")
        if isinstance(item, Sanction):
            with_ = f", with {self.states_list(item.compliers)} complying" if item.compliers else ""
            if ends:
                return (f"{self.possessive(item.actor)[0].upper()}{self.possessive(item.actor)[1:]} sanctions on "
                        f"{self.state(item.origin)} end.",
                        "Refiners may buy Myanmar's military-linked ore again.", "sanctions end")
            targets = [f"sites run by {self.state(item.origin)}'s military-linked firms"] if item.target_state_linked \
                else []
            targets += [f"sites of the {self.groups.get(g, g)}" for g in item.target_controllers]
            return (f"{Who} sanctions ore from {listing(targets, 'and')}{with_}.",
                    "Refiners in these countries may not buy that ore" + (
                        "; audited civilian mines are exempt." if item.exempt_civilian else "."),
                    f"{self.short(item.actor)} sanctions")
        if isinstance(item, ImportBan):
            if ends:
                return (f"{Who} allows ore imports from {self.state(item.origin)} again.",
                        "Its refiners may buy that ore again, by any route.", "import ban ends")
            return (f"{Who} bans all ore imports from {self.state(item.origin)}, whatever the route.",
                    "Even ore sent round through other countries can no longer be sold to its refiners.",
                    f"{self.short(item.actor)} bans {self.short(item.origin)} ore")
        if isinstance(item, Traceability):
            if ends:
                return (f"Refiners in {self.states_list(item.states)} no longer need audited ore.", "",
                        "audits end")
            return (f"Refiners in {self.states_list(item.states)} may now buy audited ore only (audit cost "
                    f"US${item.audit_cost_usd_per_kg:g} per kg).",
                    "Only licensed, audited mines can sell to them; the others sell elsewhere or not at all.",
                    "audited ore only")
        if isinstance(item, Stockpile):
            if ends:
                return f"{self.possessive(item.actor)[0].upper()}{self.possessive(item.actor)[1:]} stockpile " \
                       "agency stops.", "No more buying or releasing by it.", f"{self.short(item.actor)} stockpile ends"
            rr = ", and sells quickly if its buyers run short" if item.rapid_response else ""
            return (f"{self.possessive(item.actor)[0].upper()}{self.possessive(item.actor)[1:]} stockpile agency "
                    f"aims to hold {item.target_days:.0f} days of use{rr}.",
                    "It buys while prices are low and sells into shortages: a cushion of weeks, not months.",
                    f"{self.short(item.actor)} stockpile")
        if isinstance(item, StockpileRelease):
            if ends:
                return (f"The order to release the stockpiles of {self.states_list(item.states)} ends.",
                        "The agencies go back to their usual buying and selling.", "release ends")
            return (f"{self.states_list(item.states)[0].upper()}{self.states_list(item.states)[1:]} "
                    f"release{'s' if len(item.states) == 1 else ''} {'its' if len(item.states) == 1 else 'their'} "
                    f"stockpiles into the market.",
                    "Extra supply outside China for a few weeks: it helps only as long as the stock lasts.",
                    "stockpiles released")
        if isinstance(item, Financing):
            if ends:
                return f"{item.lender}'s facility closes.", "Plants already funded keep being built.", \
                    f"{item.lender} ends"
            when = ("at once" if item.selection_deadline_weeks == 0
                    else f"within {weeks_words(item.selection_deadline_weeks)}")
            hosts = self.states_list(item.eligible_hosts)
            return (f"{item.lender} offers US${item.budget_musd:,.0f} million of cheap "
                    f"finance for new plants and mines in {hosts}, and picks projects {when}.",
                    "Cheaper capital makes a new plant pay, but building one takes years.",
                    f"{item.lender} finance")
        if isinstance(item, BuildProjects):
            what = (f"{len(item.ids)} named project{'s' if len(item.ids) != 1 else ''}" if item.ids else
                    f"every planned plant and mine in {self.states_list(item.states)}" if item.states else
                    "every planned plant and mine")
            return (f"Go-ahead for {what}: permits first, then construction.",
                    "Years of waiting before anything is made, and a new plant still needs ore to run.",
                    "projects go ahead")
        if isinstance(item, ProjectFinance):
            name, own, capex = self.project(item.project)
            short = short_plant(name)
            if ends:
                return (f"{item.lender} makes no new commitment to {name}.",
                        "What it committed stays committed.", f"{item.lender} funding done")
            with_ = f", with its mine{'s' if len(own) > 1 else ''} {listing(own)}," if own else ""
            return (f"{Who} has {item.lender} fund {name}{with_} at once, whatever its prospects: a loan of "
                    f"US${item.share_of_capex * capex:,.0f} million ({item.share_of_capex:.0%} of its cost) at "
                    f"{item.concessional_rate:.0%} interest.",
                    "Permits first, then construction: years pass before it runs, and then it still needs ore it "
                    "can win.", f"{item.lender} funds {short}")
        if isinstance(item, PermitStreamlining):
            if ends:
                return "Permits are no longer fast-tracked.", "New plants take their usual time again.", \
                    "permits as usual"
            return (f"{Who} speeds up permits in {self.states_list(item.states)}: permits for new plants and mines "
                    f"take {item.factor:.0%} of the usual time.",
                    "New capacity arrives sooner; building it takes as long as before.", "faster permits")
        if isinstance(item, PriceFloor):
            if ends:
                return (f"The guaranteed price for {self.product(item.product)} ends.",
                        "Covered plants face the market price again.", "price floor ends")
            where = (listing([self.plants[r].name if r in self.plants else r for r in item.plants]) if item.plants
                     else f"plants in {self.states_list(item.states)}")
            return (f"{Who} guarantees {where} at least "
                    f"US${item.floor_usd_per_kg:,.0f}/kg for {self.product(item.product)}.",
                    "Those plants can plan on a minimum price, so projects there pay off more easily.",
                    f"{self.short(item.actor)} price floor")
        if isinstance(item, Election):
            starts = []
            for d in item.begins:
                try:
                    new = parse_item({**d, "start": d.get("start", item.start)})
                    starts.append(self.item(new).label)
                except Exception:  # noqa: BLE001 - a wording problem: leave it out of the sentence
                    starts.append(str(d.get("type", "a policy")))
            ended = f"ends {len(item.ends)} polic{'y' if len(item.ends) == 1 else 'ies'}" if item.ends else ""
            begun = f"starts: {listing(starts)}" if starts else ""
            change = listing([ended, begun])
            return (f"{Who} holds elections" + (f"; the new government {change}." if change else "."),
                    "A new government changes which rules hold.", f"{self.short(item.actor)} election")
        return None

    # -- lines with no policy behind them -------------------------------------------------------------
    NEWS = (
        (re.compile(r"^(?P<plant>.+) comes online \((?P<cap>[\d,.]+) t of magnets a week\)$"),
         "{plant} starts making magnets: up to {cap} tonnes a week.",
         "More magnets made outside China, if the plant can buy the oxides.", "{short} online"),
        (re.compile(r"^(?P<plant>.+): new lines ordered \(\+(?P<cap>[\d,.]+) t of magnets a week, online in (?P<n>\d+) "
                    r"weeks\): the sales it expects press on its capacity and new lines pay$"),
         "New production lines ordered at {plant}: {cap} more tonnes of magnets a week, ready in {weeks}.",
         "Its customers will soon want more than it can make, and at today's prices new lines pay for themselves.",
         "{short} expands"),
        (re.compile(r"^(?P<plant>.+): new lines online \(\+(?P<cap>[\d,.]+) t of magnets a week\)$"),
         "New lines start at {plant}: {cap} more tonnes of magnets a week.",
         "More magnets made, so more demand for the oxides in them.", "{short} lines online"),
        (re.compile(r"^(?P<plant>.+) comes online \((?P<cap>[\d,.]+) t/week\)$"),
         "{plant} starts refining: up to {cap} tonnes a week.",
         "New refining capacity, if it can get ore: capacity alone does not change who refines.", "{short} online"),
        (re.compile(r"^(?P<lender>.+) finances? (?P<plant>.+) \(US\$(?P<m>[\d,.]+)M; online in (?P<n>\d+) weeks\)$"),
         "{lenders} {lend} US${m} million to build {plant}; it should open in {weeks}.",
         "Nothing changes until it has its permits and is built.", "{lender} funds {short}"),
        (re.compile(r"^(?P<lender>.+): (?P<plant>.+) is not planned \((?P<status>[\w ]+)\); nothing funded$"),
         "{lender} funds nothing: {plant} is no longer waiting for money ({status}).",
         "A project can be decided only once.", "{lender}: nothing to fund"),
        (re.compile(r"^(?P<lender>.+): no eligible project met the selection rule$"),
         "{lender} found no project that met its rules: the money stays unspent.",
         "A fund alone does not build a refinery.", "{lender}: no project"),
        (re.compile(r"^(?P<state>.+) tightens export licences in response to rivals' stockpiling$"),
         "{state} approves fewer export licences, in answer to its rivals' stockpiling.",
         "Less leaves China: prices outside China rise.", "licences tightened"),
        (re.compile(r"^(?P<state>.+) starts (?P<plant>.+) \(permits and construction: online in (?P<n>\d+) weeks\)$"),
         "{state} starts the project {plant}: permits, then construction; it should open in {weeks}.",
         "New capacity, but only years from now.", "{short} started"),
        (re.compile(r"^(?P<plant>.+) starts mining \((?P<cap>[\d,.]+) t REO a week\)$"),
         "{plant} starts mining: up to {cap} tonnes of rare-earth oxide a week.",
         "More ore, for the plants that can reach it and bid most for it.", "{short} mining"),
        (re.compile(r"^(?P<plant>.+) closes: no feed or no cash margin for (?P<n>\d+) weeks$"),
         "{plant} closes for good: for {weeks} it had no ore or lost money on what it made.",
         "Capacity without ore it can pay for is not supply.", "{short} closes"),
        (re.compile(r"^(?P<plant>.+) is worked out$"),
         "{plant} is worked out: its reserve is exhausted.",
         "That ore is gone for good; its buyers must find another source.", "{short} worked out"),
        (re.compile(r"^(?P<plant>.+) is cancelled: it no longer covers its capital charge$"),
         "{plant} is cancelled: at today's prices it would no longer pay for its capital.",
         "Planned capacity that will not come.", "{short} cancelled"),
    )

    def news(self, text: str, date: dt.date | None = None, week: int = 0) -> Told:
        """A line the model logged with no policy behind it, in words (or as written)."""
        for pattern, sentence, why, label in self.NEWS:
            m = pattern.match(text)
            if m:
                g = m.groupdict()
                plant = g.get("plant", "")
                g["short"] = short_plant(plant)
                if "n" in g:
                    g["weeks"] = weeks_words(int(g["n"]))
                if "lender" in g:  # 'US EXIM + JBIC/JICA' (joint selection) lend together
                    lenders = g["lender"].split(" + ")
                    g["lenders"], g["lend"] = listing(lenders), "lend" if len(lenders) > 1 else "lends"
                    g["lender"] = " + ".join(lenders)
                return Told(sentence.format(**g), why, label.format(**g), SOURCE_NEWS, date, week, text)
        return Told(text, "", text[:24], SOURCE_NEWS, date, week, text)


# ================================================================================ markers on the time axes
MARKER_LABEL_CHARS = 30
MARKER_COLOURS = {SOURCE_CLASS: "#b35900", SOURCE_START: "#6a3d9a", SOURCE_SCENARIO: "#444444", SOURCE_NEWS: "#8a8a8a"}


@dataclass(frozen=True)
class Marker:
    """Everything that happened in one week, as one vertical mark on the charts' time axes."""

    date: dt.date
    label: str  # a few words (the first event's label, '+ N more' when several)
    title: str  # every sentence of the week (a tooltip)
    source: str  # the most important source that week: class, start, scenario, news


def markers(told: list[Told]) -> list[Marker]:
    """One marker per week with events, in date order; the class's own changes are named first."""
    rank = {SOURCE_CLASS: 0, SOURCE_START: 1, SOURCE_SCENARIO: 2, SOURCE_NEWS: 3}
    by_date: dict[dt.date, list[Told]] = {}
    for t in told:
        if t.date is not None:
            by_date.setdefault(t.date, []).append(t)
    out = []
    for d in sorted(by_date):
        week = sorted(by_date[d], key=lambda t: rank.get(t.source, 9))
        label = week[0].label
        if len(label) > MARKER_LABEL_CHARS:
            label = label[: MARKER_LABEL_CHARS - 1].rstrip() + "…"
        if len(week) > 1:
            label += f" +{len(week) - 1}"
        out.append(Marker(d, label, f"{date_words(d)}: " + " ".join(t.text for t in week), week[0].source))
    return out
