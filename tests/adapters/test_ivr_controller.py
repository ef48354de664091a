"""The IVR controller against a fake ARI: a caller's digits take them through the menus and
out through the destination router; every step is stored. (The same journeys with real SIP
callers are in tests/scenarios/test_ivr.py.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from sqlalchemy import select
from sqlmodel import col

from telephonist.core import calls
from telephonist.core.ari import AriClient
from telephonist.core.centre import Centre
from telephonist.core.destinations import Destination, Router
from telephonist.core.models import Call, IvrStep
from telephonist.core.prompts import Prompter
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
        self.vars: dict[str, str] = {}

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
            return {"value": self.vars.get(kw["variable"], "")}
        return {}

    def done(self, operation: str) -> list[dict[str, Any]]:
        return [kw for op, kw in self.ops if op == operation]


def rig(tmp_path: Path, store: Store) -> tuple[IvrController, Router, list[str]]:
    menus = tmp_path / "menus.yaml"
    menus.write_text(MENUS)
    router = Router(CENTRE)
    queued: list[str] = []

    async def to_queue(session: Prompter, dest: Destination, line: str) -> None:
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


async def test_back_from_a_fastagi_decision_the_destination_goes_through_the_router(
    tmp_path: Path, store: Store
) -> None:
    """``ivr-resume``: TELEPHONIST_DEST as set by a FastAGI route is parsed as a destination
    and sent through the router like any other; a menu is entered; anything else (a forged or
    broken value) puts the caller back in the entry's menu, never into the dialplan."""
    ivr, _, queued = rig(tmp_path, store)
    decided = {
        "queue:sales": ("5550011", []),
        "voicemail:100": ("5550012", []),
        "menu:sales": ("5550013", ["1"]),  # in sales, 1 is the sales queue
        "queue:x;Dial(PJSIP/1)": ("5550014", ["2"]),  # main again: 2 is support
    }
    aris = {}
    for dest, (number, presses) in decided.items():
        session, ari = caller(presses, number)
        ari.vars["TELEPHONIST_DEST"] = dest
        aris[dest] = ari
        await calls.record_start(store, session, answered=True)
        await ivr.resume(session)
    assert queued == ["queue:sales from main-line", "queue:sales from main-line",
                      "queue:support from main-line"]  # fmt: skip
    call, steps = await journey(store, "chan-5550011")
    assert call.outcome == "routed:queue:sales" and steps[-1][1] == "route"
    assert [(kw["context"], kw["extension"]) for kw in aris["voicemail:100"].done(
        "continueInDialplan")] == [("telephonist-dest", "voicemail")]  # fmt: skip
    _, steps = await journey(store, "chan-5550013")
    assert ("sales", "enter", "") in steps and ("sales", "digit", "1") in steps
    assert ("main", "enter", "") not in steps
    call, steps = await journey(store, "chan-5550014")
    assert ("main", "enter", "") in steps and call.outcome == "routed:queue:support"
    assert not aris["queue:x;Dial(PJSIP/1)"].done("continueInDialplan")
