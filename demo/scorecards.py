"""The demo's projection with a bug to repair: agent scorecards (issue 17's rebuild story).

``AgentScorecards`` keeps, per agent, how many runs started, completed and failed, the
tokens spent and the success rate, and lists every failed run with its error. As shipped
it has the bug a rebuild exists for: a ``RunFailed`` is handled in the branch of a
``RunCompleted`` (they share the "the run ended" code path), so every finished run counts
as a success, every agent scores 100 %, and the *Failed runs* page stays empty while the
*Runs* page shows runs that failed.

The fix is behind ``EVENTDESK_DEMO_FIXED_PROJECTIONS=1``. Fixing the code repairs only the
events still to come; the rows already written stay wrong until the projection is
rebuilt. So the story is: seed with the bug, restart the worker with the fix (a deploy),
rebuild ``demo.scorecards``, read the diff (two agents' counts differ, two failed runs
appear only in the new tables), swap, and roll back if you like. The live projection and
the rebuild run the same code, as they would in production.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, F, Sum

from config.options import options
from demo.models import AgentScorecard, FailedRun
from eventstore.types import RecordedEvent

#: The events a scorecard is made of.
SCORECARD_EVENTS = ("RunStarted", "StepRecorded", "RunCompleted", "RunFailed")


def _at(event: RecordedEvent) -> datetime:
    raw = event.data.get("at")
    return datetime.fromisoformat(raw) if isinstance(raw, str) else event.recorded_at


class AgentScorecards:
    """One scorecard per agent, and one row per failed run (plain ORM ``apply``)."""

    name = "demo.scorecards"
    models = (AgentScorecard, FailedRun)
    event_types = SCORECARD_EVENTS

    def apply(self, event: RecordedEvent) -> None:
        data = event.data
        agent = str(data.get("agent", "?"))
        card, _ = AgentScorecard.objects.get_or_create(agent=agent)
        kind = event.event_type
        if kind == "RunStarted":
            card.runs += 1
        elif kind == "StepRecorded":
            card.tokens += int(data.get("tokens", 0))
        elif kind == "RunCompleted" or (kind == "RunFailed" and not _fixed()):
            # The bug (fixed behind EVENTDESK_DEMO_FIXED_PROJECTIONS): a failed run ended
            # too, and it was counted here, as a success.
            card.completed += 1
        else:  # RunFailed, with the fix
            card.failed += 1
            FailedRun.objects.update_or_create(
                run_id=str(data["run_id"]),
                defaults={"agent": agent, "error": data.get("error", ""), "failed_at": _at(event)},
            )
        ended = card.completed + card.failed
        card.success_percent = round(100 * card.completed / ended) if ended else None
        card.save()

    def verify(self) -> list[str]:
        """Invariants of the tables (a rebuild checks them on its new tables before a swap):
        no agent has more runs ended than started, and each agent's failed count is the
        number of its failed runs listed."""
        problems = [
            f"{card.agent}: {card.completed + card.failed} runs ended of {card.runs} started"
            for card in AgentScorecard.objects.filter(runs__lt=F("completed") + F("failed"))
        ]
        listed = dict(FailedRun.objects.values_list("agent").annotate(n=Count("run_id")).order_by())
        counted = dict(AgentScorecard.objects.filter(failed__gt=0).values_list("agent", "failed"))
        for agent in sorted(set(listed) | set(counted)):
            if listed.get(agent, 0) != counted.get(agent, 0):
                problems.append(
                    f"{agent}: {counted.get(agent, 0)} failed runs counted,"
                    f" {listed.get(agent, 0)} listed"
                )
        return problems


def _fixed() -> bool:
    return options().demo_fixed_projections


def totals() -> dict[str, int]:
    """Completed and failed runs over every agent (what the story checks)."""
    found = AgentScorecard.objects.aggregate(completed=Sum("completed"), failed=Sum("failed"))
    return {key: int(value or 0) for key, value in found.items()}
