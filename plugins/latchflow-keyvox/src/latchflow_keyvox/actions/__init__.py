"""Every KEYVOX action, one module per API category (creates that reconcile on their own)."""

from latchflow import Action
from latchflow_keyvox.actions import (
    card,
    create_booking,
    lock,
    lock_pins,
    locker,
    locker_pins,
    reservation,
)

ACTIONS: list[Action] = [
    *lock.ACTIONS,
    *lock_pins.ACTIONS,
    *locker.ACTIONS,
    *locker_pins.ACTIONS,
    *card.ACTIONS,
    *reservation.ACTIONS,
    *create_booking.ACTIONS,
]

__all__ = ["ACTIONS"]
