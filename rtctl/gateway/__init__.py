"""The WebSocket gateway: upgrade, authentication, sessions and routing."""
