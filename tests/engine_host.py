"""A tiny stand-in for bot/handlers in pure engine tests: events -> next turn's context."""

from __future__ import annotations

from dataclasses import replace

from flows.model import (
    AskOptOut,
    Context,
    DeleteData,
    OptIn,
    OptOut,
    RecordConsent,
    RecordSessionDone,
    SaveIntention,
    SessionInfo,
    UpdateParticipant,
)


def apply(ctx: Context, event) -> Context:
    """What the host's handlers would change in the next turn's context."""
    if isinstance(event, RecordConsent | OptIn):
        return replace(ctx, status="active")
    if isinstance(event, DeleteData):
        return replace(ctx, status="deleted", open_session=None, last_session=None)
    if isinstance(event, OptOut):
        return replace(ctx, status="opted_out", optout_asked_at=None)
    if isinstance(event, AskOptOut):
        return replace(ctx, optout_asked_at=event.at)
    if isinstance(event, UpdateParticipant):
        return replace(ctx, **event.fields)
    if isinstance(event, SaveIntention):
        return replace(ctx, open_session=replace(ctx.open_session or SessionInfo(),
                                                 intention=event.text))
    if isinstance(event, RecordSessionDone):
        done = replace(ctx.open_session or SessionInfo(), done_at=event.at)
        return replace(ctx, open_session=None, last_session=done)
    return ctx
