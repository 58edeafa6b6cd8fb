"""What a benchmark run is to do: a frozen, picklable plan every worker gets.

``DEFAULT_*`` constants are the command's defaults, so a library user builds
a plan in one line: ``Plan(scenario="echo", url=..., clients=100)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rtctl.exceptions import ConfigError
from rtctl.services.drift import LIMITS
from rtctl.tokens import issue_token

__all__ = [
    "DEFAULT_DRAIN",
    "DEFAULT_DURATION",
    "DEFAULT_ENTITIES",
    "DEFAULT_MOVERS",
    "DEFAULT_PUBLISH_RATE",
    "DEFAULT_ROOM_SIZE",
    "DEFAULT_WARMUP",
    "Plan",
    "TokenPlan",
]

DEFAULT_DURATION = 30.0
DEFAULT_WARMUP = 5.0
DEFAULT_ROOM_SIZE = 10  # members per room in the ``rooms`` scenario
DEFAULT_DRAIN = 2.0  # seconds to wait for answers after the window; later ones are lost
DEFAULT_ENTITIES = LIMITS["entities"][2]  # the ``state`` scenario's room: the drift type's
DEFAULT_MOVERS = LIMITS["movers"][2]
DEFAULT_PUBLISH_RATE = 20.0  # messages/s each ``reconnect-storm`` room's publisher sends
TOKEN_TTL = 3600.0


@dataclass(frozen=True, kw_only=True)
class TokenPlan:
    """One token for every client, or a secret to mint one per client (``bench-<i>``).

    Distinct users keep a run clear of the gateway's per-user connection limit
    and make presence and rooms see many people, as in a game.
    """

    token: str | None = None
    secret: str | None = None

    def for_client(self, index: int) -> str | None:
        return self.for_user(f"bench-{index}")

    def for_user(self, sub: str) -> str | None:
        """A token for user ``sub`` (the one token when there is no secret)."""
        if self.secret is None:
            return self.token
        return issue_token(self.secret, sub=sub, ttl=TOKEN_TTL)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """A run: ``url`` is the WebSocket endpoint; ``rate`` None means closed loop."""

    scenario: str
    url: str
    clients: int
    rate: float | None = None
    duration: float = DEFAULT_DURATION
    warmup: float = DEFAULT_WARMUP
    ramp: float = 0.0
    workers: int = 1
    tokens: TokenPlan = field(default_factory=TokenPlan)
    room_size: int = DEFAULT_ROOM_SIZE
    payload_bytes: int = 32
    drain: float = DEFAULT_DRAIN
    entities: int = DEFAULT_ENTITIES  # the ``state`` scenario's room, and how many move
    movers: int = DEFAULT_MOVERS
    encoding: str = "binary"  # of its clients: binary, json, or mixed (every other one)
    publish_rate: float = DEFAULT_PUBLISH_RATE  # ``reconnect-storm``: per room, messages/s
    through: str | None = None  # the simulator profile between the clients and the gateway
    gateway: str | None = None  # the gateway's own endpoint, when ``url`` is the simulator's

    def __post_init__(self) -> None:
        """Checks what holds for any scenario; the scenario checks the rest
        (:func:`rtctl.bench.scenarios.scenario_for`)."""
        if self.clients < 1 or self.workers < 1:
            raise ConfigError("--clients and --workers must be at least 1")
        if self.workers > self.clients:
            raise ConfigError(f"{self.workers} workers for {self.clients} clients: "
                              "give each worker a client at least")
        if self.rate is not None and self.rate <= 0:
            raise ConfigError("--rate must be above 0 (or use --closed)")
        if self.duration <= 0 or self.warmup < 0 or self.ramp < 0:
            raise ConfigError("--duration must be above 0, --warmup and --ramp at least 0")

    def clients_of(self, worker: int) -> range:
        """The global client indices worker ``worker`` runs (every workers-th one)."""
        return range(worker, self.clients, self.workers)
