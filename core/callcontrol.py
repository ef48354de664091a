"""Call control: what telephonist asks Asterisk to do with calls — originate, redirect, hang
up, set a variable — as one protocol (:class:`CallControl`) with one AMI implementation
(:class:`AmiCallControl`). Capabilities describe a call (:class:`Originate`); they never
build AMI action dictionaries, so every value is checked in one place before it reaches an
AMI header or the dialplan.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from telephonist.core.ami import AmiClient

_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class CallControlError(ValueError):
    """A call description that cannot be sent safely; the message names the field."""


@dataclass(frozen=True)
class Originate:
    """A call Asterisk places: ``channel`` is dialled; once it answers it runs ``context``
    (extension ``exten``, priority 1) or ``application(data)``."""

    channel: str
    context: str = ""
    exten: str = "s"
    application: str = ""
    data: str = ""
    timeout: float = 30.0
    """Seconds the channel may ring."""
    caller_id: str = ""
    variables: Mapping[str, str] = field(default_factory=dict)
    channel_id: str = ""
    """The new channel's unique id (to match its events), or Asterisk's own."""

    def action(self) -> dict[str, str]:
        """The AMI ``Originate`` action (async: the answer comes as OriginateResponse).

        >>> Originate("PJSIP/2001", context="c", variables={"A": "1"}, timeout=5).action()
        ... # doctest: +NORMALIZE_WHITESPACE
        {'Action': 'Originate', 'Channel': 'PJSIP/2001', 'Async': 'true', 'Timeout': '5000',
         'Context': 'c', 'Exten': 's', 'Priority': '1', 'Variable': 'A=1'}
        >>> Originate("PJSIP/1", context="c", variables={"A": "x,B=y"}).action()
        Traceback (most recent call last):
        ...
        telephonist.core.callcontrol.CallControlError: variable A: a value may not hold ',' or ...
        """
        if bool(self.context) == bool(self.application):
            raise CallControlError("originate: either a context or an application")
        for name, value in self.variables.items():
            if not _VAR_NAME.match(name):
                raise CallControlError(f"variable {name!r}: not a channel variable name")
            if any(c in value for c in ",\r\n"):
                raise CallControlError(f"variable {name}: a value may not hold ',' or line breaks")
        action = {
            "Action": "Originate",
            "Channel": self.channel,
            "Async": "true",
            "Timeout": str(int(self.timeout * 1000)),
        }
        if self.context:
            action |= {"Context": self.context, "Exten": self.exten, "Priority": "1"}
        else:
            action |= {"Application": self.application, "Data": self.data}
        if self.caller_id:
            action["CallerID"] = self.caller_id
        if self.channel_id:
            action["ChannelId"] = self.channel_id
        if self.variables:
            action["Variable"] = ",".join(f"{k}={v}" for k, v in self.variables.items())
        return action


class CallControl(Protocol):
    async def originate(self, call: Originate) -> None: ...

    async def redirect(self, channel: str, context: str, exten: str) -> None: ...

    async def hangup(self, channel: str) -> None: ...

    async def set_variable(self, channel: str, name: str, value: str) -> None: ...


class AmiCallControl:
    """:class:`CallControl` over AMI. Errors are the AMI client's (:class:`AmiError`; an
    Originate whose outcome is unknown is told apart with ``outcome_unknown``)."""

    def __init__(self, ami: AmiClient) -> None:
        self.ami = ami

    async def originate(self, call: Originate) -> None:
        # as_list=False: panoramisk would otherwise wait for the OriginateResponse (the
        # answer); the queued reply is what says the call was accepted.
        await self.ami.send(call.action(), as_list=False)

    async def redirect(self, channel: str, context: str, exten: str) -> None:
        await self.ami.send({"Action": "Redirect", "Channel": channel, "Context": context,
                             "Exten": exten, "Priority": "1"})  # fmt: skip

    async def hangup(self, channel: str) -> None:
        await self.ami.send({"Action": "Hangup", "Channel": channel})

    async def set_variable(self, channel: str, name: str, value: str) -> None:
        if not _VAR_NAME.match(name):
            raise CallControlError(f"variable {name!r}: not a channel variable name")
        await self.ami.send(
            {"Action": "Setvar", "Channel": channel, "Variable": name, "Value": value}
        )
