"""The HTTP server: trigger URLs, vendor webhooks and the management API."""

from latchflow.server.app import create_app

__all__ = ["create_app"]
