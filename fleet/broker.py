"""An in-process MQTT broker (amqtt) for ``vend fleet serve --embedded-broker`` and demos.

amqtt speaks MQTT 3.1.1 only, so there are no shared subscriptions, no message expiry
and no reason codes; correctness never depends on them (see DESIGN.md). It accepts
anonymous clients: it is meant for one host, bound to loopback by default. amqtt is an
optional extra (``pip install vendfleet[broker]``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fleet.mqtt import BrokerAddress

log = logging.getLogger(__name__)


class EmbeddedBrokerError(Exception):
    """The embedded broker could not start (amqtt missing, port taken)."""


@contextlib.asynccontextmanager
async def embedded_broker(address: BrokerAddress) -> AsyncIterator[BrokerAddress]:
    """Run amqtt on ``address.host:address.port`` for the duration of the block."""
    try:
        from amqtt.broker import Broker  # noqa: PLC0415  (optional extra)
    except ImportError:
        raise EmbeddedBrokerError(
            "--embedded-broker needs amqtt: pip install 'vendfleet[broker]'"
        ) from None
    config: dict[str, Any] = {
        "listeners": {"default": {"type": "tcp", "bind": f"{address.host}:{address.port}"}},
        "plugins": {
            "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
        },
    }
    broker = Broker(config)
    try:
        await broker.start()
    except Exception as exc:  # noqa: BLE001  (amqtt raises its own and OS errors alike)
        raise EmbeddedBrokerError(f"embedded broker cannot listen on {address}: {exc}") from None
    log.info("embedded MQTT 3.1.1 broker (amqtt) listening on %s:%d", address.host, address.port)
    try:
        yield BrokerAddress(address.host, address.port, address.username, address.password)
    finally:
        with contextlib.suppress(Exception):
            await broker.shutdown()
