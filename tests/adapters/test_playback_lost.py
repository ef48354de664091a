"""A prompt whose PlaybackFinished was lost (the ARI link dropped while it played) does not
leave the caller in silence: ARI is asked whether it still plays (a fake ARI here; the event
routing itself is proved with real calls in tests/scenarios/test_ivr.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from telephonist.core import stasis
from telephonist.core.ari import AriError
from telephonist.core.stasis import CallSession


class _Ari:
    def __init__(self) -> None:
        self.playing = {"p1"}
        self.asked = 0

    async def op(self, resource: str, operation: str, **params: Any) -> Any:
        assert (resource, operation) == ("playbacks", "get")
        self.asked += 1
        if params["playbackId"] not in self.playing:
            raise AriError("playbacks.get: 404 Playback not found", 404)
        return {"id": params["playbackId"], "state": "playing"}


@pytest.fixture(autouse=True)
def _fast_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stasis, "PLAYBACK_CHECK", 0.05)


async def test_a_lost_playback_end_is_noticed() -> None:
    ari = _Ari()
    session = CallSession(ari, {"channel": {"id": "c1"}})  # type: ignore[arg-type]
    waiting = asyncio.create_task(
        session.wait("ChannelDtmfReceived", "PlaybackFinished", playback="p1")
    )
    await asyncio.sleep(0.2)
    assert not waiting.done() and ari.asked >= 2  # still playing: keeps waiting
    ari.playing.clear()  # it ended; its event never came
    ev = await asyncio.wait_for(waiting, 1)
    assert ev == {"type": "PlaybackFinished", "playback": {"id": "p1"}}


async def test_a_digit_still_comes_first_and_timeouts_still_apply() -> None:
    ari = _Ari()
    session = CallSession(ari, {"channel": {"id": "c1"}})  # type: ignore[arg-type]
    session.events.put_nowait({"type": "ChannelDtmfReceived", "digit": "3"})
    ev = await session.wait("ChannelDtmfReceived", "PlaybackFinished", playback="p1")
    assert ev["digit"] == "3"
    with pytest.raises(TimeoutError):
        await session.wait("ChannelDtmfReceived", timeout=0.12, playback="p1")
