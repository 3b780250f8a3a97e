"""The README's 45-minute lesson plan (Classroom guide, "A 45-minute lesson") played as it is written: the
pauses of its class-mode part fall on the weeks it names, and its team game (``myanmar_2025``, seed 0, four
rounds of 26 weeks) meets the Kachin halt in round 3 and ends after two years with a scoreboard for every
team."""

from __future__ import annotations

import pytest

from ui.classmode import event_stop
from ui.game import Game
from ui.play import advance_until
from ui.session import ClassroomModel


def test_the_lesson_pauses_where_the_readme_says():
    """Part 2: with *Pause at the next event* on and 5 weeks per step, each press of Play stops at the
    seizure of Pangwa (week 42, 21 Oct 2024), of Kanpaiti (47), MP Materials' Fort Worth magnet plant coming
    online (54: the magnet world's plants are events too), the fighting (56) and the halt (57, 3 Feb 2025), the
    page's own stop rule deciding."""
    m = ClassroomModel("myanmar_2025", 0)
    stop = event_stop(lambda: True)
    pauses = []
    while len(pauses) < 5 and int(m.steps) < 80:
        _, stopped = advance_until(m, 5, stop)
        if stopped:
            pauses.append((int(m.steps), m.date.isoformat()))
    assert [w for w, _ in pauses] == [42, 47, 54, 56, 57]
    assert pauses[0][1] == "2024-10-21" and pauses[4][1] == "2025-02-03"
    assert [t.text for t in m.told if t.week == 54][0].startswith("MP Materials, Fort Worth")


def test_the_lesson_game_meets_the_halt_in_round_three_and_ends_after_two_years():
    g = Game("lesson", scenario="myanmar_2025", seed=0, round_weeks=26, rounds=4)
    g.order("CN", "licences")
    g.order("US", "stockpile")
    halt_round = None
    for r in range(1, 5):
        before = {t.text for t, _ in g.told(200)}
        assert g.advance() == 26
        new = [t for t, _ in g.told(200) if t.text not in before]
        if any("halts mining" in t.text for t in new):
            halt_round = r
    assert halt_round == 3
    assert g.finished and int(g.model.steps) == 104
    board = g.scoreboard()
    assert {row.team for row in board.rows} == {"China", "United States", "Japan", "European Union",
                                                   "Australia", "Laos"}


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
