"""Every KEYVOX action, one module per API category."""

from latchflow import Action
from latchflow_keyvox.actions import card, lock, lock_pins, locker, reservation

ACTIONS: list[Action] = [
    *lock.ACTIONS,
    *lock_pins.ACTIONS,
    *locker.ACTIONS,
    *card.ACTIONS,
    *reservation.ACTIONS,
]

__all__ = ["ACTIONS"]
