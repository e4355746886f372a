"""The plugin contract: hooks, the types plugins register, errors, time, and the host that loads them."""
