"""The route network: sites, border posts, hubs, refineries and ports joined by directed edges.

Ore moves from a mine area to a refinery along the *open* path with the lowest transport and border
fees. On top of that, every armed group that controls an edge on the path levies once per kg (the
levy of the group controlling the mine site is handled by the ore market). Levies move every week, so
they are added when a path is priced, not when it is chosen; paths are recomputed only when an edge
opens or closes, so the weekly hot path reads a cache.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np

from model.params import World


@dataclass(frozen=True, slots=True)
class Path:
    edges: tuple[int, ...]  # edge indices in travel order
    base_cost_usd_per_kg: float  # transport + border fees
    corridor: str  # first labelled corridor on the path ("" if none)
    controllers: frozenset[str]  # who controls its edges (levies apply to the armed groups among them)


class RouteNetwork:
    """Directed graph of the world's nodes and edges with per-edge open/closed state."""

    def __init__(self, world: World):
        self.node_ids = [n.id for n in world.nodes]
        self.node_index = {nid: i for i, nid in enumerate(self.node_ids)}
        self.nodes = {n.id: n for n in world.nodes}
        self.edge_src = [e.src for e in world.edges]
        self.edge_dst = [e.dst for e in world.edges]
        self.edge_cost = np.array([e.cost_usd_per_kg + e.border_fee_usd_per_kg for e in world.edges])
        self.edge_capacity = np.array([e.capacity_t_per_week for e in world.edges])
        self.edge_controller = [e.controller for e in world.edges]
        self.edge_corridor = [e.corridor for e in world.edges]
        self.edge_mode = [e.mode for e in world.edges]
        self.edge_open_default = np.array([e.open for e in world.edges], dtype=bool)
        self.edge_open = self.edge_open_default.copy()
        # rule-based closures: a set of reasons per edge (a policy, a blockade); open only if none
        self.closures: list[set[str]] = [set() for _ in world.edges]
        self.openings: list[set[str]] = [set() for _ in world.edges]
        self.graph = nx.DiGraph()
        for n in world.nodes:
            self.graph.add_node(n.id, lat=n.lat, lon=n.lon, kind=n.kind, country=n.country, name=n.name)
        for i, e in enumerate(world.edges):
            self.graph.add_edge(e.src, e.dst, index=i)
        self._levies: dict[str, float] = {}
        self._by_controller: dict[str, list[int]] = {}
        self._cache: dict[tuple[str, str], Path | None] = {}
        self.version = 0

    # -- state changes --------------------------------------------------------------------------------
    def _refresh(self) -> None:
        is_open = np.array(
            [(self.edge_open_default[i] or bool(self.openings[i])) and not self.closures[i]
             for i in range(len(self.closures))],
            dtype=bool,
        )
        if not np.array_equal(is_open, self.edge_open):
            self.edge_open = is_open
            self._invalidate()

    def _invalidate(self) -> None:
        self._cache.clear()
        self.version += 1

    def close(self, edge: int, reason: str) -> None:
        if reason in self.closures[edge]:
            return  # already closed for this reason: nothing changes (armed groups re-close every week)
        self.closures[edge].add(reason)
        self._refresh()

    def reopen(self, edge: int, reason: str) -> None:
        if reason not in self.closures[edge]:
            return
        self.closures[edge].discard(reason)
        self._refresh()

    def force_open(self, edge: int, reason: str) -> None:
        self.openings[edge].add(reason)
        self._refresh()

    def unforce_open(self, edge: int, reason: str) -> None:
        self.openings[edge].discard(reason)
        self._refresh()

    def set_controller(self, edges: list[int], controller: str) -> None:
        """Roads change hands (a seizure): levies on them go to ``controller`` from now on."""
        for e in edges:
            self.edge_controller[e] = controller
        self._by_controller.clear()
        self._invalidate()

    def set_levies(self, levies: dict[str, float]) -> None:
        """Levy in USD/kg charged by each armed group on edges it controls."""
        self._levies = dict(levies)

    @property
    def levies(self) -> dict[str, float]:
        """This week's levy (USD/kg) of each armed group, as last set (read-only use)."""
        return self._levies

    def cost(self, path: Path) -> float:
        """Transport, fees and the levy of each armed group on the path, USD/kg."""
        return path.base_cost_usd_per_kg + sum(self._levies[g] for g in path.controllers if g in self._levies)

    # -- queries ----------------------------------------------------------------------------------------
    def edges_matching(self, *, corridor: str | None = None, src: str | None = None, dst: str | None = None,
                       controller: str | None = None, countries: tuple[str, str] | None = None) -> list[int]:
        """Indices of edges matching every given criterion (``countries`` = (from, to) node countries)."""
        out = []
        for i in range(len(self.edge_src)):
            if corridor is not None and self.edge_corridor[i] != corridor:
                continue
            if src is not None and self.edge_src[i] != src:
                continue
            if dst is not None and self.edge_dst[i] != dst:
                continue
            if controller is not None and self.edge_controller[i] != controller:
                continue
            if countries is not None and (self.nodes[self.edge_src[i]].country,
                                          self.nodes[self.edge_dst[i]].country) != countries:
                continue
            out.append(i)
        return out

    def edges_controlled_by(self, controller: str) -> list[int]:
        """Edges a state or armed group controls (cached until a road changes hands)."""
        if controller not in self._by_controller:
            self._by_controller[controller] = [i for i, c in enumerate(self.edge_controller) if c == controller]
        return self._by_controller[controller]

    def path(self, src: str, dst: str) -> Path | None:
        """Cheapest open path from ``src`` to ``dst`` (None when none is open)."""
        key = (src, dst)
        if key in self._cache:
            return self._cache[key]
        result: Path | None
        if src == dst:
            result = Path((), 0.0, "", frozenset())
        else:
            open_ = self.edge_open
            cost = self.edge_cost

            def weight(u: str, v: str, d: dict) -> float | None:
                i = d["index"]
                return cost[i] + 1e-6 if open_[i] else None

            try:
                nodes = nx.dijkstra_path(self.graph, src, dst, weight=weight)
            except (nx.NetworkXNoPath, nx.NodeNotFound):
                nodes = None
            if nodes is None:
                result = None
            else:
                idx = tuple(self.graph.edges[u, v]["index"] for u, v in zip(nodes[:-1], nodes[1:], strict=True))
                corridor = next((self.edge_corridor[i] for i in idx if self.edge_corridor[i]), "")
                result = Path(idx, float(sum(cost[i] for i in idx)), corridor,
                              frozenset(self.edge_controller[i] for i in idx))
        self._cache[key] = result
        return result

    def path_groups(self, path: Path) -> set[str]:
        """Armed groups levying on a path's edges."""
        return {g for g in path.controllers if g in self._levies}

    def positions(self) -> dict[str, tuple[float, float]]:
        """Node positions (lon, lat) for maps."""
        return {nid: (n.lon, n.lat) for nid, n in self.nodes.items()}
