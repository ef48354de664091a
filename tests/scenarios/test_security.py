"""Nobody can use the centre against itself (issue 11): tried against the real sandbox PBX as
an attacker with a phone or a local account would — real AMI, real SIP, real HTTP."""

from __future__ import annotations

import asyncio
import http.client
import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from telephonist.asterisk_conf.render import agent_password
from telephonist.asterisk_conf.sandbox import Sandbox
from telephonist.bench.simcall import audio_scenario, dtmf_scenario
from telephonist.core.ami import AmiClient, AmiError
from telephonist.core.models import CallbackRequest, CampaignLead, OutboxEvent, VoicemailMessage
from telephonist.core.numbers import Numbering
from telephonist.core.settings import Settings
from telephonist.core.storage import Store
from tests.scenarios.conftest import SIP_HOST, AmiWatch
from tests.scenarios.harness import Serve, sipp_call, telephonist, until

pytestmark = pytest.mark.pbx


async def test_the_ami_user_cannot_run_commands_or_read_the_config(
    ami: AmiClient, pbx: Sandbox
) -> None:
    marker = pbx.rootfs / "tmp" / "telephonist-owned"
    marker.unlink(missing_ok=True)
    for app, data in (("System", f"id > /{marker.relative_to(pbx.rootfs)}"),
                      ("Exec", "System(id)")):  # fmt: skip
        with pytest.raises(AmiError, match="Originate Access Forbidden"):
            await ami.send({"Action": "Originate", "Channel": "Local/s@telephonist-nowhere",
                            "Application": app, "Data": data})  # fmt: skip
    with pytest.raises(AmiError, match="[Pp]ermission denied"):
        await ami.send({"Action": "GetConfig", "Filename": "manager.conf"})
    with pytest.raises(AmiError, match="[Pp]ermission denied"):
        await ami.send({"Action": "Command", "Command": "core show version"})
    assert not marker.exists()
    # What the user is granted still works (reporting: the channel list).
    assert isinstance(await ami.send({"Action": "CoreShowChannels"}), list)


def test_asterisk_does_not_run_as_root(pbx: Sandbox) -> None:
    pid = int(pbx.pid_file.read_text())
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    uid, gid = pbx.run_ids()
    assert uid != 0 and gid != 0
    assert status["Name"].strip() == "asterisk"
    assert [int(x) for x in status["Uid"].split()] == [uid] * 4
    assert [int(x) for x in status["Gid"].split()] == [gid] * 4
    # The config it reads is not its own to change.
    conf = pbx.host_path(pbx.paths().etc) / "manager.conf"
    assert conf.stat().st_uid == 0 and conf.stat().st_mode & 0o777 == 0o640


def request(
    settings: Settings, method: str, path: str, *, token: str | None = None, host: str = ""
) -> tuple[int, dict[str, Any]]:
    """A raw request to serve's HTTP endpoint: (status, JSON body)."""
    conn = http.client.HTTPConnection("127.0.0.1", settings.http.port, timeout=10)
    headers = {"Host": host or f"127.0.0.1:{settings.http.port}"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request(method, path, headers=headers)
        r = conn.getresponse()
        raw = r.read()
        body = json.loads(raw) if r.getheader("Content-Type", "").startswith(
            "application/json") else {"text": raw.decode(errors="replace")}  # fmt: skip
        return r.status, body
    finally:
        conn.close()


async def test_http_needs_the_token_and_its_own_host_name(
    serve: Serve, settings: Settings, config_file: Path
) -> None:
    token = settings.http_token
    assert len(token) >= 32

    def call(*a: Any, **kw: Any) -> tuple[int, dict[str, Any]]:
        return request(settings, *a, **kw)

    # Without the key, or with a wrong one: nothing changes, nothing is read.
    for tok in (None, "", token[:-1], token + "x", "Basic " + token):
        assert call("POST", "/ivr/reload", token=tok)[0] == 401, tok
        assert call("GET", "/acd/state", token=tok)[0] == 401, tok  # callers' numbers
    assert call("GET", "/ivr/latency")[0] == 401
    assert call("POST", "/ivr/latency/reset")[0] == 401
    # A state change is POST only, even with the key.
    assert call("GET", "/ivr/reload", token=token)[0] == 405
    assert call("GET", "/ivr/latency?reset=1", token=token)[0] == 200  # reads, resets nothing
    # A foreign Host (DNS rebinding) is refused even on an open route, even with the key.
    for host in ("evil.example", "evil.example:28080", "127.0.0.1.evil.example"):
        assert call("GET", "/healthz", host=host)[0] == 403, host
        assert call("GET", "/acd/state", token=token, host=host)[0] == 403, host
    # Health and metrics stay open on loopback; with the key, everything works.
    assert call("GET", "/healthz")[0] == 200
    status, body = call("GET", "/metrics")
    assert status == 200 and "telephonist_loop_up" in body["text"]
    assert call("GET", "/healthz", host=f"localhost:{settings.http.port}")[0] == 200
    status, state = call("GET", "/acd/state", token=token)
    assert status == 200 and "sales" in state["queues"]
    status, body = call("POST", "/ivr/reload", token=token)
    assert status == 200 and body["version"]
    # The CLI reads the key from the secrets file, as an admin runs it.
    out = telephonist(config_file, "ivr", "reload")
    assert out.returncode == 0 and "menus reloaded" in out.stdout, out.stdout + out.stderr
    assert "queue" in telephonist(config_file, "queue", "status").stdout.lower()
    # The key is in secrets.toml (0600), never printed by config show.
    shown = telephonist(config_file, "config", "show").stdout
    assert token not in shown and "token" in shown
    secrets_file = settings.data_dir / "secrets.toml"
    assert f'http_token = "{token}"' in secrets_file.read_text()
    assert secrets_file.stat().st_mode & 0o777 == 0o600


async def test_an_agent_phone_must_authenticate(
    serve: Serve, settings: Settings, ami_watch: AmiWatch
) -> None:
    """Ivan's phone has a fixed address (no registration): it is matched by that address
    and its password. A spoofed From gets 401 and reaches no feature code."""
    password = agent_password(settings.ami_secret, "2009")
    port = settings.pbx.sip_port

    def place(**kw: Any) -> Any:
        return asyncio.to_thread(sipp_call, port, "*70", "2009", timeout=10, **kw)

    proc = await place(scenario="spoof_expect_401.xml")  # no password: 401, as expected
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]
    proc = await place(scenario="agent_call_auth.xml", auth=("2009", "0" * 24))
    assert proc.returncode != 0  # a wrong password is challenged again, never answered
    # The right password from another address: refused by the endpoint's address match.
    proc = await place(scenario="agent_call_auth.xml", auth=("2009", password),
                       source_ip="127.0.0.3")  # fmt: skip
    assert proc.returncode != 0
    await asyncio.sleep(1)
    assert not [e for e in ami_watch.events
                if e.get("Event") == "Newchannel" and e.get("Channel", "").startswith(
                    "PJSIP/2009-")]  # fmt: skip
    # The real phone: answered, and the disposition route found the call its own (*70: a
    # key that is no disposition, so it answers "unknown-key" and changes nothing).
    proc = await place(scenario="agent_call_auth.xml", auth=("2009", password))
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]
    ev = await ami_watch.wait_for(
        lambda e: e.get("Event") == "VarSet" and e.get("Variable") == "TELEPHONIST_DISPOSITION"
        and e.get("Channel", "").startswith("PJSIP/2009-"),
        what="the disposition route's answer",
    )  # fmt: skip
    assert ev["Value"] == "unknown-key" and ev["Context"] == "from-agents"


class FakeAgi:
    """A local process posing as Asterisk on the FastAGI port: sends a header, answers
    every command with ``200 result=1`` and keeps the commands it was sent."""

    def __init__(self, settings: Settings, source: str = "127.0.0.1") -> None:
        self.settings, self.source = settings, source
        self.commands: list[str] = []

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(
            self.settings.agi.host, self.settings.agi.port, local_addr=(self.source, 0)
        )

    async def session(self, script: str, channel: str, uniqueid: str) -> list[str]:
        reader, writer = await self.open()
        header = {"agi_network_script": script, "agi_channel": channel,
                  "agi_uniqueid": uniqueid, "agi_context": "from-agents"}  # fmt: skip
        writer.write("".join(f"{k}: {v}\n" for k, v in header.items()).encode() + b"\n")
        await writer.drain()
        while line := await asyncio.wait_for(reader.readline(), 10):
            self.commands.append(line.decode().strip())
            writer.write(b"200 result=1\n")
            await writer.drain()
        writer.close()
        return self.commands


def agi_sessions(settings: Settings, outcome: str) -> float:
    status, body = request(settings, "GET", "/metrics")
    assert status == 200
    m = re.search(rf'telephonist_agi_sessions_total\{{outcome="{outcome}"\}} ([0-9.e+]+)',
                  body["text"])  # fmt: skip
    return float(m.group(1)) if m else 0.0


async def test_fastagi_takes_only_the_pbx_a_few_at_a_time_and_never_forged_dispositions(
    serve: Serve, settings: Settings, store: Store
) -> None:
    # A forged session for Ivan's channel, from a local process: nothing is stored.
    before = await _dispositions(store)
    sent = await FakeAgi(settings).session(
        "disposition?key=9", "PJSIP/2009-0000abcd", "1700000000.99"
    )
    assert 'SET VARIABLE TELEPHONIST_DISPOSITION "not-an-agent"' in sent, sent
    assert await _dispositions(store) == before
    # From an address that is not the PBX's: closed before a byte is read.
    refused = agi_sessions(settings, "refused")
    reader, writer = await FakeAgi(settings, source="127.0.0.4").open()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    assert agi_sessions(settings, "refused") == refused + 1
    # The cap and the session limit: serve again with small ones.
    serve.stop()
    small = {"TELEPHONIST_AGI__MAX_CONNECTIONS": "3", "TELEPHONIST_AGI__SESSION_LIMIT": "3"}
    await asyncio.to_thread(serve.start, env_extra=small)
    try:
        idle = [await FakeAgi(settings).open() for _ in range(3)]
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        reader, writer = await FakeAgi(settings).open()  # the fourth: closed at once
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert time.monotonic() - t0 < 1.5
        writer.close()
        for _, w in idle:
            w.close()
            await w.wait_closed()
        await asyncio.sleep(0.5)  # serve sees them gone: the next one is under the cap
        # A client trickling its header (one line a second, under read_timeout) is cut
        # after session_limit seconds all the same.
        reader, writer = await FakeAgi(settings).open()
        t0 = time.monotonic()
        for i in range(10):
            try:
                writer.write(f"agi_x{i}: y\n".encode())
                await writer.drain()
            except ConnectionError:
                break
            if await _closed(reader, 1.0):
                break
        took = time.monotonic() - t0
        writer.close()
        assert 2.5 <= took <= 5, took
        assert agi_sessions(settings, "session_limit") >= 1
    finally:
        serve.stop()
        await asyncio.to_thread(serve.start)


async def _closed(reader: asyncio.StreamReader, wait: float) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), wait) == b""
    except TimeoutError:
        return False


async def _dispositions(store: Store) -> list[tuple[int | None, str | None]]:
    async with store.sessions() as s:
        rows = await s.execute(select(CampaignLead).order_by(col(CampaignLead.id)))
        return [(lead.id, lead.disposition) for lead in rows.scalars()]


async def test_sip_listens_apart_from_ami_and_ari(pbx: Sandbox, settings: Settings) -> None:
    """SIP on 127.0.0.2 (the scenario config), AMI and ARI on 127.0.0.1 only."""
    assert settings.pbx.sip_address == SIP_HOST == "127.0.0.2"
    for port in (settings.pbx.ami_port, settings.pbx.ari_port):
        with pytest.raises(OSError):  # nothing listens there on the SIP address
            socket.create_connection((SIP_HOST, port), timeout=2).close()
        socket.create_connection(("127.0.0.1", port), timeout=2).close()

    # SIP answers on its address, not on AMI's.
    def options(host: str) -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            s.bind(("127.0.0.1", 0))
            me = s.getsockname()[1]
            s.sendto((f"OPTIONS sip:{host}:{settings.pbx.sip_port} SIP/2.0\r\n"
                      f"Via: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK-{me}\r\n"
                      f"From: <sip:probe@127.0.0.1:{me}>;tag={me}\r\n"
                      f"To: <sip:{host}:{settings.pbx.sip_port}>\r\n"
                      f"Call-ID: probe-{me}@127.0.0.1\r\nCSeq: 1 OPTIONS\r\n"
                      "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n").encode(),
                     (host, settings.pbx.sip_port))  # fmt: skip
            try:
                return s.recv(4096)
            except (TimeoutError, ConnectionRefusedError):
                return b""

    assert options(SIP_HOST).startswith(b"SIP/2.0 ")
    assert options("127.0.0.1") == b""
    # ARI admits only pbx.ari_permit: the rendered restriction is there.
    http_conf = (pbx.host_path(pbx.paths().etc) / "http.conf").read_text()
    assert "[/ari]\ntype = restriction" in http_conf
    assert f"permit = {settings.pbx.ari_permit}" in http_conf


async def _outbox(store: Store, topic_end: str) -> list[dict[str, Any]]:
    async with store.sessions() as s:
        rows = await s.execute(select(OutboxEvent).order_by(col(OutboxEvent.id)))
        return [json.loads(r.payload)["data"] for r in rows.scalars()
                if r.topic.endswith(topic_end)]  # fmt: skip


async def _tasks_for(store: Store, *numbers: str) -> list[CallbackRequest]:
    """Tasks stored for any of ``numbers`` however written: they are kept as the customer's
    key (E.164 when valid: ``+12125550188``), whatever the caller typed."""
    keys = {*numbers, *(Numbering("US").identity(n) for n in numbers)}
    async with store.sessions() as s:
        rows = await s.execute(select(CallbackRequest).where(col(CallbackRequest.number).in_(keys)))
        return list(rows.scalars())


async def test_callers_cannot_make_the_centre_dial_emergency_premium_or_foreign_numbers(
    serve: Serve, settings: Settings, store: Store, ami_watch: AmiWatch, tmp_path: Path
) -> None:
    """Called 200, pressed 4, and typed 112#, then a premium-rate number, then one abroad:
    each refused with "your call cannot be completed as dialled", nothing stored, nothing
    dialled; after three refusals, goodbye."""
    typed = ["112", "19005551234", "011442071234567"]
    keys = [(1200, "4")]
    for number in typed:  # "2": not my number; type one; "1": yes, that one
        keys += [(2500 if number == typed[0] else 6000, "2"), (1500, number + "#"), (2500, "1")]
    scenario = dtmf_scenario(tmp_path / "typed.xml", keys, 9000, pbx_must_hang_up=True)
    proc = await asyncio.to_thread(sipp_call, settings.pbx.sip_port, "200", "2125550188",
                                   scenario=str(scenario), timeout=90)  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-1500:] + proc.stderr[-1500:]
    refused = await _outbox(store, "/callbacks/refused")
    # The caller is counted under their key (E.164); the refused numbers as they typed them.
    assert [(r["number"], r["reason"]) for r in refused if r["requested_by"] == "+12125550188"] == [
        ("112", "emergency"), ("19005551234", "type:premium_rate"),
        ("011442071234567", "international"),
    ]  # fmt: skip
    assert await _tasks_for(store, *typed, "2125550188") == []
    # A voicemail from a premium-rate caller ID: the message is kept, no callback task.
    speech = audio_scenario(tmp_path / "vm.xml", seconds=3, hold_ms=3500)
    proc = await asyncio.to_thread(sipp_call, settings.pbx.sip_port, "306", "19005550142",
                                   scenario=str(speech))  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-1500:]

    async def stored_message() -> VoicemailMessage | None:
        async with store.sessions() as s:
            rows = await s.execute(
                select(VoicemailMessage).where(col(VoicemailMessage.caller_number) == "19005550142")
            )
            return rows.scalar_one_or_none()

    message = await until(stored_message, timeout=60, what="the voicemail stored")
    assert message.callback_id is None
    assert await _tasks_for(store, "19005550142") == []
    for number in (*typed, "19005550142"):
        assert not [e for e in ami_watch.events if e.get("Event") == "DialBegin"
                    and number in e.get("DialString", "")], number  # fmt: skip


async def test_one_task_per_number_and_a_few_requests_per_caller(
    serve: Serve, settings: Settings, store: Store, config_file: Path, tmp_path: Path
) -> None:
    """The same caller asks twice for their own number: one task. Then for another number:
    a second task. Then for a third: over requests_per_caller (2 in the test centre), they
    hear that the service is not available on their line, and no task is made."""
    caller = "2125550199"
    own = [(1200, "4"), (2500, "1")]  # 1: yes, call me back on this number

    def other(number: str) -> list[tuple[int, str]]:
        return [(1200, "4"), (2500, "2"), (1500, number + "#"), (2500, "1")]

    try:
        for i, keys in enumerate((own, own, other("2125550102"), other("2125550103"))):
            scenario = dtmf_scenario(tmp_path / f"ask{i}.xml", keys, 8000, pbx_must_hang_up=True)
            proc = await asyncio.to_thread(sipp_call, settings.pbx.sip_port, "200", caller,
                                           scenario=str(scenario), timeout=60)  # fmt: skip
            assert proc.returncode == 0, (i, proc.stdout[-1500:])
        mine = await _tasks_for(store, caller, "2125550102", "2125550103")
        key = f"+1{caller}"  # one customer, one key: E.164 (core/numbers.py)
        assert sorted((t.number, t.merged, t.requested_by) for t in mine) == [
            ("+12125550102", 0, key), (key, 1, key),
        ]  # fmt: skip
        limited = await _outbox(store, "/callbacks/limited")
        assert [(x["number"], x["requested_by"]) for x in limited] == [("+12125550103", key)]
        # The CLI applies the same policy; an admin may override it (not for 112), logged.
        refused = telephonist(config_file, "callback", "add", "19005551234", "--queue", "support")
        assert refused.returncode != 0 and "premium-rate" in refused.stderr, refused.stderr
        never = telephonist(config_file, "callback", "add", "112", "--queue", "support",
                            "--allow-any-number")  # fmt: skip
        assert never.returncode != 0 and "emergency" in never.stderr, never.stderr
        forced = telephonist(config_file, "callback", "add", "19005551234", "--queue",
                             "support", "--allow-any-number")  # fmt: skip
        assert forced.returncode == 0, forced.stderr
        assert "overridden" in forced.stderr
        (task,) = await _tasks_for(store, "19005551234")
        (event,) = [e for e in await _outbox(store, "/callbacks/requested")
                    if e["callback_id"] == task.id]  # fmt: skip
        assert "--allow-any-number" in event["override"]
    finally:
        async with store.sessions() as s:
            rows = await s.execute(select(CallbackRequest).where(
                col(CallbackRequest.state).in_(("pending", "queued"))))  # fmt: skip
            open_ids = [str(r.id) for r in rows.scalars()]
        for cb_id in open_ids:
            telephonist(config_file, "callback", "cancel", cb_id, "--reason", "test done")
