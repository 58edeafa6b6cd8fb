"""The fuzz suite's live tests run over each transport, as the gateway suite does."""

from tests.gateway.conftest import transport  # noqa: F401  (the parametrized fixture)
