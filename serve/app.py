"""``telephonist serve``: every controller of the centre in one TaskGroup.

SIGINT/SIGTERM cancel the group; each component closes its connections on the way out, and the
process exits 0. Should a task not end within :data:`SHUTDOWN_GRACE` seconds, the stack of every
task still running is logged and the process exits 70: a stop is never ignored.

Each background loop runs under its own guard (:mod:`core.loops`): a loop that
fails with an unexpected error is logged, counted, shown in ``/healthz`` and restarted with a
capped back-off, while the other loops and the calls in progress go on.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal

from telephonist.acd.agents import AgentService
from telephonist.acd.controller import AcdController
from telephonist.acd.queue_log import QueueLogIngester, sandbox_queue_log
from telephonist.acd.watcher import QueueWatcher
from telephonist.agi_handlers.disposition import agent_channel, disposition_route
from telephonist.agi_handlers.selftest import selftest_route
from telephonist.agi_handlers.server import AgiServer, agi_peers
from telephonist.agi_handlers.vip import vip_lookup_route
from telephonist.callbacks.capture import QueueCallbackRoute
from telephonist.callbacks.policy import NumberPolicy
from telephonist.callbacks.request import CallbackOffer
from telephonist.callbacks.service import CallbackService
from telephonist.callbacks.voicemail import VoicemailWatcher, sandbox_spool
from telephonist.core import calls
from telephonist.core.ami import AmiClient, AmiError
from telephonist.core.ari import AriClient
from telephonist.core.cel import CelIngester, sandbox_cel_log
from telephonist.core.destinations import Router
from telephonist.core.events import OutboxPublisher
from telephonist.core.loops import Supervisor
from telephonist.core.numbers import Dialing
from telephonist.core.retention import Pruner
from telephonist.core.settings import Settings
from telephonist.core.stasis import EVENTS as STASIS_EVENTS
from telephonist.core.stasis import StasisDispatcher
from telephonist.core.storage import Store
from telephonist.demo.route import demo_route
from telephonist.dialer import returns
from telephonist.dialer.engine import DialerService
from telephonist.ivr.controller import IvrController, LatencyLog
from telephonist.ivr.definitions import Definitions
from telephonist.reports.facts import QueueCallBuilder
from telephonist.reports.mail import ReportMailer
from telephonist.serve.http import HttpEndpoint

log = logging.getLogger("telephonist.serve")

SHUTDOWN_GRACE = 10.0
"""Seconds serve gives its loops to close after SIGINT/SIGTERM (aiomqtt waits up to 5 s for
the broker's DISCONNECT acknowledgement, ARI and AMI close at once)."""


def _stuck_shutdown() -> None:
    """The stop did not finish: say what still runs, then end the process."""
    for task in asyncio.all_tasks():
        out = io.StringIO()
        task.print_stack(limit=12, file=out)
        log.error("shutdown: task %s still running\n%s", task.get_name(), out.getvalue())
    log.error("shutdown did not finish in %.0fs: exiting", SHUTDOWN_GRACE)
    logging.shutdown()
    os._exit(70)


class Service:
    """The wired service. Built from settings; ``run()`` until cancelled."""

    def __init__(self, settings: Settings, definitions: Definitions) -> None:
        self.settings = settings
        self.centre = definitions.centre
        self.registry = definitions.registry
        pbx = settings.pbx
        self.store = Store(
            settings.database_url, topic_prefix=settings.mqtt.topic_prefix, node=settings.mqtt.node
        )
        # Only the event classes the controllers follow: dialplan and DTMF events (one per
        # dialplan step) would cost CPU under load for nothing.
        self.ami = AmiClient(
            pbx.host,
            pbx.ami_port,
            pbx.ami_user,
            settings.ami_secret,
            events="system,call,agent,user,reporting",
        )
        self.ari = AriClient(
            pbx.host,
            pbx.ari_port,
            pbx.ari_user,
            settings.ari_secret,
            pbx.stasis_app,
            allowed_events=STASIS_EVENTS,
        )
        self.publisher = OutboxPublisher(self.store, settings.mqtt)
        self.agi = AgiServer(
            settings.agi.host,
            settings.agi.port,
            read_timeout=settings.agi.read_timeout,
            session_limit=settings.agi.session_limit,
            max_connections=settings.agi.max_connections,
            permit=agi_peers(settings),
        )
        self.agi.route("selftest", selftest_route(self.store))
        self.agi.route(
            "disposition", disposition_route(self.store, self.centre, agent_channel(self.ami))
        )
        routes = {"demo": demo_route(self.store)}
        self.latency = LatencyLog()
        # Numbers that come from callers are dialled back only under the centre's policy.
        policy = NumberPolicy(self.centre.callbacks.numbers, settings.dialer.region)
        # One router sends callers to destinations (queue redirects, IVR options, line
        # fallbacks); each capability registers the kinds it takes.
        self.router = Router(self.centre)
        self.acd = AcdController(self.store, self.centre, self.router)
        self.router.handle("callback", CallbackOffer(self.store, policy, self.centre))
        self.watcher = QueueWatcher(self.ami, self.store, self.centre)
        self.agents = AgentService(self.ami, self.store, self.centre)
        self.ami.on_connect(self._restore_agents)
        log_path = pbx.queue_log
        if log_path is None and pbx.mode == "sandbox":
            log_path = sandbox_queue_log(pbx.cache_dir / f"rootfs-{pbx.debian_suite}", pbx.instance)
        self.queue_log = QueueLogIngester(log_path, self.store) if log_path else None
        if self.queue_log is not None:
            self.queue_log.hooks.append(calls.on_queue_log)
            # Each visit to a queue, for the reports (reports/facts.py).
            self.queue_log.hooks.append(QueueCallBuilder(self.centre, policy.numbering))
        cel_path = pbx.cel_log
        if cel_path is None and pbx.mode == "sandbox":
            cel_path = sandbox_cel_log(pbx.cache_dir / f"rootfs-{pbx.debian_suite}", pbx.instance)
        # The true call records: answer, end, hang-up cause, who hung up (core/cel.py).
        self.cel = CelIngester(cel_path, self.store) if cel_path else None
        routes["acd-redirect"] = self.acd.redirect
        routes["queue"] = self.acd.line
        routes["queue-callback"] = QueueCallbackRoute(
            self.store, self.watcher, self.router, self.centre, policy
        )
        self.callbacks = CallbackService(
            self.store, self.ami, self.centre, self.watcher, self.queue_log, policy=policy
        )
        self.acd.redirect_hooks.append(self.callbacks.on_redirect)  # missed calls
        # People calling back the number a campaign presented (dialer/returns.py).
        routes[returns.LINE] = returns.CampaignReturns(
            self.store, policy.numbering, self.acd, self.watcher
        )
        self.dialer = DialerService(
            self.store, self.ami, self.watcher, self.queue_log,
            wrapups={q.name: q.wrapup for q in self.centre.queues},
            dialing=Dialing(policy.numbering, self.centre.trunks),
        )  # fmt: skip
        rootfs = pbx.cache_dir / f"rootfs-{pbx.debian_suite}"
        spool = pbx.voicemail_spool
        if spool is None and pbx.mode == "sandbox":
            spool = sandbox_spool(rootfs, pbx.instance)
        self.voicemail = (
            VoicemailWatcher(self.store, self.ami, self.centre, spool, settings.smtp, policy=policy)
            if spool is not None
            else None
        )
        if self.registry is not None:
            ivr = IvrController(
                self.store, self.registry, self.centre, self.router, latency=self.latency
            )
            routes |= {"ivr": ivr.start, "ivr-resume": ivr.resume}
            self.agi.route("vip-lookup", vip_lookup_route(self.registry, policy.numbering))
        self.stasis = StasisDispatcher(self.ari, routes)
        self.call_records = calls.CallReconciler(
            self.store, self.ami, busy=lambda: self.stasis.running
        )
        self.loops = Supervisor()
        self.http = HttpEndpoint(
            settings.http.host,
            settings.http.port,
            [self.ami.link, self.ari.link, self.publisher.link],
            registry=self.registry,
            queue_state=self.watcher,
            loops=self.loops,
            token=settings.http_token,
            allowed_hosts=settings.http.allowed_hosts,
            latency=self.latency,
        )
        self._add_loops()

    async def _restore_agents(self) -> None:
        try:
            restored = await self.agents.restore()
        except AmiError as exc:
            log.warning("agents' queue memberships not restored: %s", exc)
            return
        if restored:
            log.info("%d logged-in agent(s) in their queues again", restored)

    def _add_loops(self) -> None:
        add = self.loops.add
        add("http", self.http.run)
        add("fastagi", self.agi.run)
        add("mqtt-publisher", self.publisher.run)
        add("outbox-gauge", self.publisher.watch_pending)
        add("retention", Pruner(self.store, self.settings.storage).run)
        add("ami", self.ami.run)
        add("ari", self.ari.run)
        add("stasis", self.stasis.run)
        if self.registry is not None:
            add("ivr-watch", self.registry.watch)
        add("queue-watcher", self.watcher.run)
        if self.queue_log is not None:
            add("queue-log", self.queue_log.run)
        if self.cel is not None:
            add("cel", self.cel.run)
        add("call-records", self.call_records.run)
        add("callbacks", self.callbacks.run)
        add("dialer", self.dialer.run)
        if self.voicemail is not None:
            add("voicemail", self.voicemail.run)
        add("report-mailer", ReportMailer(self.store, self.centre, self.settings.smtp).run)

    async def run(self) -> None:
        await self.store.migrate()
        try:
            await self.loops.run()
        finally:
            await self.store.close()


async def serve(settings: Settings, definitions: Definitions) -> None:
    """Run until SIGINT/SIGTERM."""
    service = Service(settings, definitions)
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    stopping = False

    def _stop(signame: str) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            log.info("%s received: shutting down", signame)
            main.cancel()
            loop.call_later(SHUTDOWN_GRACE, _stuck_shutdown)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, _stop, sig.name)
    try:
        await service.run()
    except asyncio.CancelledError:
        if not stopping:
            raise
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    log.info("stopped")
