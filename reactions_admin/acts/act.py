"""An operator act, declared once: its name, permission, input, result and refusals.

Every door adapts an ``Act`` the same way: it turns its own arguments (a path and a JSON
body, a tool's arguments, a command line, a form) into the act's ``input``, calls
``act(given, actor, via=door)``, and shows the result's ``as_payload()`` (or ``text()``)
or the refusal. The handler itself stays an ordinary function, ``pause(subscriber_name,
reason, actor, *, via)``: the input's fields are its arguments, by name. Which statuses
a REST operation documents, what an MCP tool or a command says it does, which permission
an admin action needs: all are read from the declaration.

The inputs are a few shapes shared by many acts (``OnSubscriber``: retry now, pause,
resume, and the rebuild acts); a door has one small adapter per shape.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from reactions_admin import errors
from reactions_admin.guards import Actor

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

In = TypeVar("In", bound="DataclassInstance")
Out = TypeVar("Out", bound="Result")


class Result(Protocol):
    """What an accepted act did, as every door returns it."""

    def as_payload(self) -> dict[str, Any]:
        """The JSON form (REST body, MCP structured content)."""
        ...

    def text(self) -> str:
        """What it did in one line for a person (a command's output, an admin message)."""
        ...


@dataclass(frozen=True)
class OnSubscriber:
    """The input of an act on one subscriber: which one, and why."""

    subscriber_name: str
    reason: str


@dataclass(frozen=True)
class OnEvent:
    """The input of an act on one event of a reaction: which reaction, which event, why."""

    subscriber_name: str
    event_id: uuid.UUID | str
    reason: str


@dataclass(frozen=True)
class OnStream:
    """The input of an act on one stream of a stream-ordered reaction."""

    subscriber_name: str
    stream_id: str
    reason: str


@dataclass(frozen=True)
class OnFailureGroup:
    """The input of an act on a failure group, as the operator previewed it."""

    fingerprint_id: str
    expected_count: int
    reason: str


#: Every act may be refused so, whatever it does: no or bad credentials (401), no
#: permission (403), no durable store or no database (503).
ALWAYS: tuple[type[errors.ReactionsError], ...] = (
    errors.NotAuthenticated,
    errors.PermissionDenied,
    errors.Unavailable,
)

#: The reason rule's refusals (``reasons.check_reason``, ``preamble.require_storable``):
#: every act that asks for a reason may answer them, first.
REASON_REFUSALS: tuple[type[errors.ReactionsError], ...] = (
    errors.ReasonRequired,
    errors.ReasonTooLong,
    errors.UnstorableText,
)


@dataclass(frozen=True)
class Act(Generic[In, Out]):
    """One operator act. ``run`` is its handler: it takes the input's fields by name, the
    actor and ``via`` (the door), and raises a ``ReactionsError`` to refuse; its
    docstring says what the act does."""

    #: Stable and unique: the MCP tool's name, and how the act is named in code.
    name: str
    #: How a person names it: a button, a page title, a message ("Pause").
    verb: str
    #: The Django permission the handler checks ("reactions_admin.operate_subscriber").
    permission: str
    input: type[In]
    result: type[Out]
    #: What the act itself may refuse (beyond ``ALWAYS``), most general first.
    refusals: tuple[type[errors.ReactionsError], ...]
    run: Callable[..., Out]
    #: Whether it throws something away for good (an MCP client asks before calling it).
    destructive: bool = False

    def __post_init__(self) -> None:
        if not (self.name.isidentifier() and self.name.islower()):
            # ``Family.act`` takes the name and the verb in a row: "Pause" is the verb.
            raise TypeError(f"{self.name!r}: an act's name is a snake_case identifier")
        taken = inspect.signature(self.run).parameters
        missing = [field.name for field in fields(self.input) if field.name not in taken]
        if missing or "actor" not in taken or "via" not in taken:
            raise TypeError(f"{self.name}: the handler takes no {missing or 'actor/via'}")

    def __call__(self, given: In, actor: Actor, *, via: str) -> Out:
        """Run the act as ``actor`` through the door ``via``."""
        arguments = {field.name: getattr(given, field.name) for field in fields(given)}
        return self.run(**arguments, actor=actor, via=via)

    @property
    def doc(self) -> str:
        """What the act does, for people: the handler's docstring."""
        return inspect.getdoc(self.run) or self.verb

    @property
    def statuses(self) -> tuple[int, ...]:
        """The HTTP statuses of the act's own refusals."""
        return tuple(sorted({refusal.status for refusal in self.refusals}))

    @property
    def codes(self) -> tuple[str, ...]:
        """The codes of the act's own refusals."""
        return tuple(refusal.code for refusal in self.refusals)

    def describe(self) -> str:
        """The doc, the permission it needs and the codes it may refuse with: what a REST
        operation, an MCP tool and a command say about the act."""
        return f"{self.doc}\n\nNeeds {self.permission}. Refused: {', '.join(self.codes)}."


@dataclass(frozen=True)
class Family(Generic[In]):
    """What the acts of one family (one module of the acts room) share: their input, the
    permission they need and the refusals every one of them may answer. ``act`` declares
    one member with what is its own."""

    input: type[In]
    permission: str
    refusals: tuple[type[errors.ReactionsError], ...]

    def act(
        self,
        name: str,
        verb: str,
        run: Callable[..., Out],
        result: type[Out],
        *refusals: type[errors.ReactionsError],
        permission: str = "",
        input: type[In] | None = None,
        destructive: bool = False,
    ) -> Act[In, Out]:
        """The act ``name``: the family's refusals, then its own ``refusals``; another
        ``permission`` or a larger ``input`` where it needs one."""
        return Act(
            name=name,
            verb=verb,
            permission=permission or self.permission,
            input=input or self.input,
            result=result,
            refusals=(*self.refusals, *refusals),
            run=run,
            destructive=destructive,
        )
