"""The demo reactions' "LLM": a pluggable client; the default is a local deterministic fake."""

from __future__ import annotations

import hashlib
import time
from typing import Protocol

from django.utils.module_loading import import_string

from config.options import options


class LLMError(Exception):
    """The model refused or failed the request."""


class ContextWindowExceeded(LLMError):
    """The prompt is larger than the model's context window (it fails every time)."""


class LLMClient(Protocol):
    """What the demo reactions need from a language model."""

    def complete(self, prompt: str, *, max_tokens: int = 300) -> str:
        """The model's answer to ``prompt``."""
        ...


class FakeLLM:
    """Deterministic, offline: the same prompt always gets the same answer.

    Sleeps ``options().demo_llm_latency_seconds`` to feel like a round trip, and
    refuses a prompt over ``context_tokens`` (about four characters a token), as
    a real model does.
    """

    context_tokens = 32_000
    _openers = (
        "In short:",
        "Summary:",
        "What happened:",
        "Debrief:",
    )
    _advice = (
        "Consider a tighter tool budget next time.",
        "The plan held; keep the same decomposition.",
        "Add a verification step before the final answer.",
        "Escalate to a human earlier when the data looks inconsistent.",
    )

    def complete(self, prompt: str, *, max_tokens: int = 300) -> str:
        time.sleep(options().demo_llm_latency_seconds)
        tokens = len(prompt) // 4
        if tokens > self.context_tokens:
            raise ContextWindowExceeded(
                f"prompt is {tokens:,} tokens; the model's context window is "
                f"{self.context_tokens:,} tokens"
            )
        digest = hashlib.sha256(prompt.encode()).digest()
        first_line = next((line for line in prompt.splitlines() if line.strip()), "")
        answer = (
            f"{self._openers[digest[0] % len(self._openers)]} {first_line.strip()[:160]} "
            f"{self._advice[digest[1] % len(self._advice)]}"
        )
        return answer[: max_tokens * 4]


def default_llm() -> LLMClient:
    """The client named by ``options().demo_llm_client``."""
    client: LLMClient = import_string(options().demo_llm_client)()
    return client
