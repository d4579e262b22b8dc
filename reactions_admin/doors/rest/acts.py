"""How the REST door adapts an act (``reactions_admin.acts.act.Act``): one route a short
function, which only says how the path and the body make the act's input::

    @router.post("/subscribers/{name}/pause", **operation(PAUSE, ActionOut))
    def pause_subscriber(request: HttpRequest, name: str, body: ReasonIn) -> Any:
        return run(request, PAUSE, OnSubscriber(name, body.reason))

ninja reads the path and body from the function's signature (so it stays the route's);
the result's schema is the route's; the documented refusals and the description come
from the declaration. A refusal is mapped once, by ``api.py``'s exception handlers.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema

from reactions_admin.acts.act import Act, In, OnSubscriber, Out
from reactions_admin.doors.rest.schemas import ALWAYS, ReasonIn, refusals

#: Every act takes a JSON body: too large (413), or of the wrong shape (422).
BODY_REFUSALS = (413, 422)


def operation(act: Act[Any, Any], response: type[Schema], **more: Any) -> dict[str, Any]:
    """The keyword arguments of ``router.post`` for ``act``: its result's schema, the
    refusals it documents (its own, the body's, ``ALWAYS``), its description, and
    ``more`` (``tags=[...]``)."""
    statuses = sorted({*act.statuses, *BODY_REFUSALS})
    documented = {200: response, **refusals(*ALWAYS, *statuses)}
    return {"response": documented, "description": act.describe(), **more}


def run(request: HttpRequest, act: Act[In, Out], given: In) -> dict[str, Any]:
    """Call ``act`` as the request's caller and answer its result's JSON."""
    return act(given, request.auth, via="rest").as_payload()  # type: ignore[attr-defined]


def add_subscriber_act_route(
    router: Router,
    path: str,
    act: Act[OnSubscriber, Any],
    response: type[Schema],
    *,
    view: str,
    module: str,
) -> None:
    """Add ``POST path`` for ``act``, whose input is only ``OnSubscriber``: the route
    written ``def <view>(request, name: str, body: ReasonIn)`` in ``module`` would be
    (ninja names its operation id and URL after the view's name and module)."""

    def route(request: HttpRequest, name: str, body: ReasonIn) -> Any:
        return run(request, act, OnSubscriber(name, body.reason))

    route.__name__ = route.__qualname__ = view
    route.__module__ = module
    route.__annotations__ = {"request": HttpRequest, "name": str, "body": ReasonIn, "return": Any}
    router.post(path, **operation(act, response))(route)
