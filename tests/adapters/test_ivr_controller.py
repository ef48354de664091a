"""The IVR controller against a fake ARI: a caller's digits take them through the menus and
out through the destination router; every step is stored. (The same journeys with real SIP
callers are in tests/scenarios/test_ivr.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from sqlalchemy import select
from sqlmodel import col

from telephonist.core.ari import AriClient
from telephonist.core.centre import Centre
from telephonist.core.destinations import Destination, Router
from telephonist.core.models import Call, IvrStep
from telephonist.core.stasis import CallSession
from telephonist.core.storage import Store
from telephonist.ivr.controller import IvrController, LatencyLog
from telephonist.ivr.registry import MenuRegistry

CENTRE = Centre.model_validate(
    {"queues": [{"name": "support"}, {"name": "sales"}],
     "mailboxes": [{"box": "100", "name": "General"}]}
)  # fmt: skip
MENUS = """\
entries:
  - {number: "200", name: main-line, menu: main}
menus:
  main:
    greeting: hello
    timeout: 2
    options:
      "1": {menu: sales}
      "2": {queue: support}
      "3": {voicemail: "100"}
  sales:
    greeting: [beep]
    options:
      "1": {queue: sales}
      "*": back
"""


class FakeAri:
    """Each prompt started gets the caller's next key press (if any) as a DTMF event, then
    its PlaybackFinished; every operation is recorded."""

    def __init__(self, presses: list[str]) -> None:
        self.presses = presses
        self.ops: list[tuple[str, dict[str, Any]]] = []
        self.session: CallSession | None = None

    async def op(self, resource: str, operation: str, **kw: Any) -> Any:
        self.ops.append((operation, kw))
        assert self.session is not None
        if operation == "play":
            if self.presses:
                self.session.events.put_nowait(
                    {"type": "ChannelDtmfReceived", "digit": self.presses.pop(0)}
                )
            self.session.events.put_nowait(
                {"type": "PlaybackFinished", "playback": {"id": kw["playbackId"]}}
            )
        if operation == "getChannelVar":
            return {"value": ""}
        return {}

    def done(self, operation: str) -> list[dict[str, Any]]:
        return [kw for op, kw in self.ops if op == operation]


def rig(tmp_path: Path, store: Store) -> tuple[IvrController, Router, list[str]]:
    menus = tmp_path / "menus.yaml"
    menus.write_text(MENUS)
    router = Router(CENTRE)
    queued: list[str] = []

    async def to_queue(session: CallSession, dest: Destination, line: str) -> None:
        queued.append(f"{dest} from {line}")  # the ACD's handler, here a spy

    router.handle("queue", to_queue)
    registry = MenuRegistry(menus, CENTRE)
    return IvrController(store, registry, CENTRE, router, latency=LatencyLog()), router, queued


def caller(presses: list[str], number: str) -> tuple[CallSession, FakeAri]:
    ari = FakeAri(presses)
    session = CallSession(cast(AriClient, ari), {
        "channel": {"id": f"chan-{number}", "caller": {"number": number}},
        "args": ["ivr", "main-line"]})  # fmt: skip
    ari.session = session
    return session, ari


async def journey(store: Store, channel: str) -> tuple[Call, list[tuple[str, str, str]]]:
    async with store.sessions() as s:
        call = (await s.execute(select(Call).where(col(Call.channel_id) == channel))).scalar_one()
        steps = (await s.execute(select(IvrStep).where(col(IvrStep.channel_id) == channel)
                                 .order_by(col(IvrStep.seq)))).scalars()  # fmt: skip
        return call, [(st.menu, st.event, st.digit) for st in steps]


async def test_a_digit_sends_the_caller_to_a_queue_through_the_router(
    tmp_path: Path, store: Store
) -> None:
    ivr, _, queued = rig(tmp_path, store)
    session, ari = caller(["2"], "5550001")
    await ivr.start(session)
    assert queued == ["queue:support from main-line"]
    call, steps = await journey(store, session.id)
    assert ("main", "digit", "2") in steps and steps[0][:2] == ("main", "enter")
    assert (call.outcome or "").startswith("routed:queue:support"), call.outcome
    assert len(ari.done("answer")) == 1


async def test_a_sub_menu_then_voicemail_is_finished_in_the_dialplan(
    tmp_path: Path, store: Store
) -> None:
    ivr, _, queued = rig(tmp_path, store)
    session, ari = caller(["1", "*", "3"], "5550002")  # sales, back, voicemail
    await ivr.start(session)
    assert queued == []
    sets = {kw["variable"]: kw["value"] for kw in ari.done("setChannelVar")}
    assert sets["TELEPHONIST_MAILBOX"] == "100"
    assert [(kw["context"], kw["extension"]) for kw in ari.done("continueInDialplan")] == [
        ("telephonist-dest", "voicemail")
    ]
    _, steps = await journey(store, session.id)
    assert [(m, d) for m, e, d in steps if e == "digit"] == [("main", "1"), ("sales", "*"),
                                                              ("main", "3")]  # fmt: skip
