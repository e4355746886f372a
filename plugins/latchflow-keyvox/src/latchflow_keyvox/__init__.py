"""KEYVOX smart locks, lockers, IC cards and reservations for latchflow."""
