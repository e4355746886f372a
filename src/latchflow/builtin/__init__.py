"""Built-in triggers and actions, written against ``latchflow`` like any plugin."""
