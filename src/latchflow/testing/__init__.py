"""What plugin authors test with: conformance checks, direct calls, the registry and flows.

Everything here is public and stays importable from ``latchflow.testing``:

- ``conformance_problems``, ``assert_no_secret``, ``secret_forms``: checks on a plugin;
- ``make_connection``, ``make_context``, ``serve_app``, ``free_port``: call actions, triggers
  and simulators directly, over real HTTP;
- ``check_provider``, ``settle``: a credential provider against its simulator;
- ``load_registry``, ``build_registry``, ``plugin_manager``, ``Registry``: load plugins as the
  engine does;
- ``validate_flow``, ``Flow``, ``render``, ``build_scope``, ``is_truthy``: check flow documents
  and evaluate their expressions.
"""

from latchflow.flows.document import Flow, validate_flow
from latchflow.flows.expressions import build_scope, is_truthy, render
from latchflow.plugin.host import Registry, build_registry, load_registry, plugin_manager
from latchflow.testing.calls import free_port, make_connection, make_context, serve_app
from latchflow.testing.conformance import assert_no_secret, conformance_problems, secret_forms
from latchflow.testing.providers import check_provider, settle

__all__ = [
    "Flow",
    "Registry",
    "assert_no_secret",
    "build_registry",
    "build_scope",
    "check_provider",
    "conformance_problems",
    "free_port",
    "is_truthy",
    "load_registry",
    "make_connection",
    "make_context",
    "plugin_manager",
    "render",
    "secret_forms",
    "serve_app",
    "settle",
    "validate_flow",
]
