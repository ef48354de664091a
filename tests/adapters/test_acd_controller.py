"""The ACD controller against a fake ARI: where a caller the queue cannot serve goes, through
the one destination router — in a centre without IVR menus too (before, the router was wired
by the IVR only, and such callers heard "all circuits busy" while the redirect was stored as
routed)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import select

from telephonist.acd.controller import AcdController
from telephonist.acd.redirects import Decision
from telephonist.core.ari import AriClient
from telephonist.core.centre import Centre
from telephonist.core.destinations import Destination, Router
from telephonist.core.models import QueueRedirect
from telephonist.core.prompts import Prompter
from telephonist.core.stasis import CallSession
from telephonist.core.storage import Store, UnitOfWork

CENTRE = Centre.model_validate(
    {
        "queues": [
            {"name": "q", "redirects": {"empty": "voicemail:100", "overflow": "menu:main",
                                        "no_answer": "queue:other"}},
            {"name": "other", "refuse_join_when": [], "leave_when": []},
        ],
        "mailboxes": [{"box": "100", "name": "General"}],
    }
)  # fmt: skip


class FakeAri:
    """Records every ARI operation; a prompt finishes at once; channel variables from a dict."""

    def __init__(self, variables: dict[str, str]) -> None:
        self.variables = variables
        self.ops: list[tuple[str, str, dict[str, Any]]] = []
        self.session: CallSession | None = None

    async def op(self, resource: str, operation: str, **kw: Any) -> Any:
        self.ops.append((resource, operation, kw))
        if operation == "getChannelVar":
            return {"value": self.variables.get(kw["variable"], "")}
        if operation == "play":
            assert self.session is not None
            self.session.events.put_nowait(
                {"type": "PlaybackFinished", "playback": {"id": kw["playbackId"]}}
            )
        return {}

    def done(self, operation: str) -> list[dict[str, Any]]:
        return [kw for _, op, kw in self.ops if op == operation]


def call(variables: dict[str, str]) -> tuple[CallSession, FakeAri]:
    ari = FakeAri(variables)
    session = CallSession(cast(AriClient, ari), {
        "channel": {"id": "chan-1", "caller": {"number": "5550123"}},
        "args": ["acd-redirect", "support-line"]})  # fmt: skip
    ari.session = session
    return session, ari


def controller(store: Store) -> tuple[AcdController, Router]:
    router = Router(CENTRE)  # no IVR: nobody registers "menu"
    return AcdController(store, CENTRE, router), router


async def test_an_empty_queue_sends_its_caller_to_voicemail_without_any_ivr(store: Store) -> None:
    acd, _ = controller(store)
    seen: list[tuple[str, str]] = []

    async def hook(uow: UnitOfWork, decision: Decision, caller: str) -> None:
        seen.append((decision.reason, caller))  # callbacks' missed-call hook, here a spy

    acd.redirect_hooks.append(hook)
    session, ari = call({"TELEPHONIST_QUEUE": "q", "QUEUESTATUS": "JOINEMPTY"})
    await acd.redirect(session)
    assert seen == [("empty", "5550123")]
    assert {(v["variable"], v["value"]) for v in ari.done("setChannelVar")} >= {
        ("TELEPHONIST_MAILBOX", "100"), ("TELEPHONIST_VM_OPTIONS", "u"),
    }  # fmt: skip
    assert [(c["context"], c["extension"]) for c in ari.done("continueInDialplan")] == [
        ("telephonist-dest", "voicemail")
    ]
    assert not ari.done("play") and not ari.done("hangup")
    async with store.sessions() as s:
        (row,) = (await s.execute(select(QueueRedirect))).scalars()
    assert (row.reason, row.destination, row.status) == ("empty", "voicemail:100", "JOINEMPTY")


async def test_a_redirect_to_another_queue_goes_through_the_acd(store: Store) -> None:
    acd, _ = controller(store)
    session, ari = call({"TELEPHONIST_QUEUE": "q", "QUEUESTATUS": "CONTINUE"})
    await acd.redirect(session)
    sets = {v["variable"]: v["value"] for v in ari.done("setChannelVar")}
    assert sets["TELEPHONIST_QUEUE"] == "other" and sets["TELEPHONIST_LINE"] == "support-line"
    assert [c["extension"] for c in ari.done("continueInDialplan")] == ["queue"]


async def test_a_destination_nobody_takes_is_told_to_the_caller(store: Store) -> None:
    """``menu:main`` in a centre without menus: the caller hears that the call cannot go
    through and the call ends — never silence, never a crash."""
    acd, _ = controller(store)
    session, ari = call({"TELEPHONIST_QUEUE": "q", "QUEUESTATUS": "FULL"})
    await acd.redirect(session)
    assert [p["media"] for p in ari.done("play")] == ["sound:all-circuits-busy-now"]
    assert len(ari.done("hangup")) == 1 and not ari.done("continueInDialplan")


async def test_the_router_sends_every_kind_it_knows(store: Store) -> None:
    router = Router(CENTRE)
    taken: list[str] = []

    async def take(session: Prompter, dest: Destination, line: str) -> None:
        taken.append(f"{dest} from {line}")

    router.handle("callback", take)
    for text, exten in (("extension:1001", "extension"), ("outside:0123@office", "outside")):
        session, ari = call({})
        await router.send(session, Destination.parse(text), "l1")
        assert [c["extension"] for c in ari.done("continueInDialplan")] == [exten]
    session, ari = call({})
    await router.send(session, Destination.parse("callback:q"), "l1")
    assert taken == ["callback:q from l1"]
    session, ari = call({})
    await router.send(session, Destination.parse("hangup"), "l1")
    assert len(ari.done("hangup")) == 1
