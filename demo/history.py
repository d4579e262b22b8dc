"""A small, realistic, deterministic history of agent runs for the demo."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from eventstore import NO_STREAM, NewEvent, StreamAppend

AGENTS = {
    "triage-bot": ["Triage the overnight incident queue", "Label new bug reports"],
    "release-scribe": ["Draft release notes for v2.14", "Summarise merged pull requests"],
    "data-janitor": ["Deduplicate the customer table", "Backfill missing invoice currencies"],
}
TOOLS = ["search_tickets", "read_file", "run_sql", "http_get", "write_comment", "open_pr"]
CAUTIONS = [
    ("warning", "Tool call returned 5xx twice; retried with backoff"),
    ("warning", "Query touched 48,000 rows, above the 10,000 soft limit"),
    ("critical", "Agent tried to write to a production table without approval"),
]
#: The run whose caution carries an evidence excerpt far larger than the model's context
#: window: the CautionDrafter fails on it every time (the demo's poison event).
POISON_RUN = "run-0007"
#: The run one of whose steps pasted a whole tool output as its summary: the RunDebriefer's
#: prompt quotes every step, so its debrief fails every time and the run's stream is
#: parked, while the other runs are debriefed (the RunDebriefer is stream-ordered).
DEBRIEF_POISON_RUN = "run-0004"
FIRST_RUN = "run-0001"


def _poison_excerpt() -> str:
    line = "2026-11-26T03:12:09Z data-janitor run_sql: UPDATE customers SET ... -- 1 row\n"
    return line * 2_000  # ~160,000 characters: about 40,000 tokens


def _pasted_output() -> str:
    line = "release-scribe http_get: <li>Merged #4127: bump the HTTP client, retry on 5xx</li>\n"
    return line * 1_800  # ~150,000 characters: about 37,000 tokens


class _RunEvents:
    """Events of one run, each a little later than the one before."""

    def __init__(self, rng: random.Random, run_id: str, agent: str, at: datetime) -> None:
        self.rng, self.run_id, self.agent, self.at = rng, run_id, agent, at

    def __call__(self, kind: str, **data: object) -> NewEvent:
        self.at += timedelta(seconds=self.rng.randint(5, 90))
        common = {"run_id": self.run_id, "agent": self.agent, "at": self.at.isoformat()}
        return NewEvent(
            kind, {**common, **data}, {"actor": self.agent, "correlation_id": self.run_id}
        )


def demo_history(now: datetime | None = None, runs: int = 12) -> list[list[StreamAppend]]:
    """One append per run (each one transaction), runs ordered by start time."""
    rng = random.Random(2026)
    now = now or datetime.now(UTC)
    start = now - timedelta(hours=30)
    history: list[list[StreamAppend]] = []
    for number in range(1, runs + 1):
        run_id = f"run-{number:04d}"
        agent = list(AGENTS)[(number - 1) % len(AGENTS)]
        task = rng.choice(AGENTS[agent])
        at = start + timedelta(hours=2 * number, minutes=rng.randint(0, 50))
        event = _RunEvents(rng, run_id, agent, at)

        events = [event("RunStarted", task=task, model="fake-llm-1")]
        for step in range(1, rng.randint(2, 6) + 1):
            tool = rng.choice(TOOLS)
            events.append(
                event("StepRecorded", step=step, tool=tool, tokens=rng.randint(200, 4_000),
                      summary=f"step {step}: {tool} for '{task}'")
            )  # fmt: skip
        if run_id == DEBRIEF_POISON_RUN:
            events.append(
                event("StepRecorded", step=len(events), tool="http_get", tokens=37_000,
                      summary=f"pasted the whole page:\n{_pasted_output()}")
            )  # fmt: skip
        if run_id == POISON_RUN:
            events.append(
                event("CautionRaised", severity="critical",
                      message="Agent attached its whole SQL session log as evidence",
                      excerpt=_poison_excerpt())
            )  # fmt: skip
        elif rng.random() < 0.4:
            severity, message = rng.choice(CAUTIONS)
            events.append(
                event("CautionRaised", severity=severity, message=message,
                      excerpt=f"{agent} {rng.choice(TOOLS)}: {message.lower()}")
            )  # fmt: skip
        if number == runs:
            pass  # the last run is still going
        elif number % 5 == 0:
            events.append(event("RunFailed", error="Tool budget exhausted after repeated 5xx"))
        else:
            events.append(
                event("RunCompleted", outcome=f"Done: {task.lower()}", steps=len(events) - 1)
            )
        history.append([StreamAppend(run_id, events, NO_STREAM)])
    return history


def fresh_poison(number: int, now: datetime | None = None) -> StreamAppend:
    """A new run (``run-poison-NNNN``) whose caution carries the oversized evidence again:
    the CautionDrafter wedges on it, so the wedge-and-dismiss story can be shown again."""
    run_id = f"run-poison-{number:04d}"
    at = now or datetime.now(UTC)
    meta = {"actor": "data-janitor", "correlation_id": run_id}
    common = {"run_id": run_id, "agent": "data-janitor"}
    return StreamAppend(
        run_id,
        [
            NewEvent("RunStarted", {**common, "at": at.isoformat(),
                     "task": "Deduplicate the customer table", "model": "fake-llm-1"}, meta),
            NewEvent("CautionRaised", {**common, "at": (at + timedelta(seconds=30)).isoformat(),
                     "severity": "critical",
                     "message": "Agent attached its whole SQL session log as evidence",
                     "excerpt": _poison_excerpt()}, meta),
        ],
        NO_STREAM,
    )  # fmt: skip
