"""Agents: log in to their queues, pause with a reason, unpause, log out; and who is doing
what right now. Acts through AMI (app_queue dynamic members); logins and pauses, with their
reasons and durations, are stored and published (``telephonist/<node>/acd/agent``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from telephonist.acd.events import ACD
from telephonist.core.ami import AmiClient, AmiError
from telephonist.core.centre import Agent, Centre
from telephonist.core.models import AgentLogin, AgentPause, utcnow
from telephonist.core.storage import Store

REASON = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,39}$")
DEVICE_STATES = {
    "0": "unknown", "1": "idle", "2": "in use", "3": "busy", "4": "invalid",
    "5": "unavailable", "6": "ringing", "7": "ringing (in use)", "8": "on hold",
}  # fmt: skip


class AgentError(Exception):
    """A bad agent command: the message says what to fix."""


@dataclass
class AgentStatus:
    agent: Agent
    queues: dict[str, int] = field(default_factory=dict)
    """Queue -> penalty, for the queues the agent is logged in to."""
    paused: bool = False
    reason: str = ""
    state: str = "logged out"
    calls_taken: int = 0


def interface(agent: Agent) -> str:
    return f"PJSIP/{agent.extension}"


class AgentService:
    def __init__(self, ami: AmiClient, store: Store, centre: Centre) -> None:
        self.ami = ami
        self.store = store
        self.centre = centre

    def agent(self, agent_id: str) -> Agent:
        agent = self.centre.agent(agent_id)
        if agent is None:
            known = ", ".join(a.id for a in self.centre.agents) or "none defined"
            raise AgentError(f"no agent {agent_id!r} (agents: {known})")
        return agent

    async def login(self, agent_id: str) -> list[str]:
        """Add the agent to every queue of their skills, with its penalty."""
        agent = self.agent(agent_id)
        if not agent.skills:
            raise AgentError(f"agent {agent_id!r} has no skills (queue: penalty) to log in to")
        await self._join(agent)
        queues = sorted(agent.skills)
        async with self.store.unit_of_work() as uow:
            uow.session.add(AgentLogin(agent=agent.id, queues=",".join(queues)))
            ACD(uow, "agent", {"agent": agent.id, "event": "login", "queues": queues})
        return queues

    async def restore(self) -> int:
        """Make Asterisk's queue members what telephonist has stored: every agent logged in
        (and not logged out) is added to their queues again, paused again if they were. Run
        at every AMI connect: an Asterisk restart forgets its dynamic members, and a centre
        must not find its agents silently logged out. Returns how many agents were restored.
        """
        async with self.store.sessions() as s:
            logged_in = {
                login.agent
                for login in (
                    await s.execute(
                        select(AgentLogin).where(col(AgentLogin.logged_out_at).is_(None))
                    )
                ).scalars()
            }
            paused = {
                p.agent: p.reason
                for p in (
                    await s.execute(select(AgentPause).where(col(AgentPause.ended_at).is_(None)))
                ).scalars()
            }
        restored = 0
        for agent_id in sorted(logged_in):
            agent = self.centre.agent(agent_id)
            if agent is None or not agent.skills:
                continue  # removed from the centre file since
            await self._join(agent)
            if agent_id in paused:
                await self.ami.send(
                    {"Action": "QueuePause", "Interface": interface(agent), "Paused": "true",
                     "Reason": paused[agent_id]},
                    as_list=False,
                )  # fmt: skip
            restored += 1
        return restored

    async def _join(self, agent: Agent) -> None:
        """Add the agent to every queue of their skills (already a member: fine)."""
        for queue, penalty in agent.skills.items():
            try:
                await self.ami.send(
                    {
                        "Action": "QueueAdd",
                        "Queue": queue,
                        "Interface": interface(agent),
                        "Penalty": penalty,
                        "MemberName": agent.name or agent.id,
                        "StateInterface": interface(agent),
                    },
                    as_list=False,  # panoramisk 1.4 never resolves QueueAdd otherwise
                )
            except AmiError as exc:
                if "Already there" not in str(exc):
                    raise

    async def logout(self, agent_id: str) -> None:
        agent = self.agent(agent_id)
        for queue in agent.skills:
            try:
                await self.ami.send(
                    {"Action": "QueueRemove", "Queue": queue, "Interface": interface(agent)},
                    as_list=False,
                )
            except AmiError as exc:
                if "Not there" not in str(exc):
                    raise
        await self._end_pause(agent)
        async with self.store.unit_of_work() as uow:
            open_logins = await uow.session.execute(
                select(AgentLogin).where(
                    col(AgentLogin.agent) == agent.id, col(AgentLogin.logged_out_at).is_(None)
                )
            )
            for login in open_logins.scalars():
                login.logged_out_at = utcnow()
            ACD(uow, "agent", {"agent": agent.id, "event": "logout"})

    async def pause(self, agent_id: str, reason: str) -> None:
        agent = self.agent(agent_id)
        if not REASON.match(reason):
            raise AgentError(
                f"pause reason {reason!r}: 1-40 letters, digits, spaces, '.', '_' or '-'"
            )
        await self.ami.send(
            {
                "Action": "QueuePause",
                "Interface": interface(agent),
                "Paused": "true",
                "Reason": reason,
            },
            as_list=False,
        )
        await self._end_pause(agent)  # a new reason starts a new pause
        async with self.store.unit_of_work() as uow:
            uow.session.add(AgentPause(agent=agent.id, reason=reason))
            ACD(uow, "agent", {"agent": agent.id, "event": "pause", "reason": reason})

    async def unpause(self, agent_id: str) -> float | None:
        """Unpause; returns how long the pause lasted (seconds), if one was open."""
        agent = self.agent(agent_id)
        await self.ami.send(
            {"Action": "QueuePause", "Interface": interface(agent), "Paused": "false"},
            as_list=False,
        )
        seconds = await self._end_pause(agent)
        async with self.store.unit_of_work() as uow:
            ACD(uow, "agent", {"agent": agent.id, "event": "unpause", "seconds": seconds})
        return seconds

    async def _end_pause(self, agent: Agent) -> float | None:
        seconds = None
        async with self.store.unit_of_work() as uow:
            rows = await uow.session.execute(
                select(AgentPause).where(
                    col(AgentPause.agent) == agent.id, col(AgentPause.ended_at).is_(None)
                )
            )
            now = utcnow()
            for pause in rows.scalars():
                started = (
                    pause.started_at
                    if pause.started_at.tzinfo
                    else pause.started_at.replace(tzinfo=now.tzinfo)
                )
                pause.ended_at = now
                pause.seconds = seconds = round((now - started).total_seconds(), 3)
        return seconds

    async def status(self) -> list[AgentStatus]:
        """Every defined agent with their queues, pause and device state (AMI QueueStatus)."""
        by_interface = {interface(a): AgentStatus(a) for a in self.centre.agents}
        response: Any = await self.ami.send({"Action": "QueueStatus"}, as_list=True)
        for message in response if isinstance(response, list) else []:
            if message.get("Event") != "QueueMember":
                continue
            status = by_interface.get(message.get("Location") or message.get("Interface", ""))
            if status is None:
                continue
            status.queues[message.get("Queue", "")] = int(message.get("Penalty", 0) or 0)
            status.paused = message.get("Paused") == "1"
            status.reason = message.get("PausedReason", "") if status.paused else ""
            status.state = DEVICE_STATES.get(message.get("Status", "0"), "unknown")
            status.calls_taken += int(message.get("CallsTaken", 0) or 0)
        return list(by_interface.values())
