"""A local HubSpot Media Bridge simulator: a real HTTP server on 127.0.0.1 for tests and the demo.

    from importer.simulator import Simulator, SimulatorConfig

    with Simulator(SimulatorConfig(burst=10, window_ms=1000, error_rate=0.1, seed=7)) as sim:
        httpx.post(f"{sim.url}/media-bridge/v1/events/media-played",
                   headers={"Authorization": f"Bearer {sim.token}"}, json=event)
        sim.client.events(sessionId="s-1"); sim.client.stats(); sim.client.configure(burst=0)

What a client can rely on is written at the top of ``importer.simulator.app``; the request
order, counting and fault rules live in ``app``, ``limits`` and ``faults``.
"""

from importer.simulator.client import SimulatorClient
from importer.simulator.config import CONTACTS_READ, MEDIA_BRIDGE_WRITE, SimulatorConfig
from importer.simulator.process import SimulatorProcess
from importer.simulator.server import Simulator

__all__ = [
    "CONTACTS_READ",
    "MEDIA_BRIDGE_WRITE",
    "Simulator",
    "SimulatorClient",
    "SimulatorConfig",
    "SimulatorProcess",
]
