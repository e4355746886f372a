"""Input fields and output schemas several KEYVOX actions share."""

from __future__ import annotations

from latchflow_keyvox import assumptions as A
from latchflow_keyvox.actions.base import F, obj, s, t

UNIT_ID = s("unitId", "KEYVOX unit (door or room) id, as listed by List units", required=True)
LOCK_ID = s("lockId", "KEYVOX lock id (16 characters, e.g. 000D6F0013112273)", required=True)
PIN_ID = s("pinId", "Id of the PIN, as returned when it was created", required=True)
DEVICE_ID = s("deviceId", "Locker device id (the locker's MAC address)", required=True)
BOX_NUM = s("boxNum", "Box number on the locker, e.g. 00-01", required=True)
CARD_ID = s("cardId", "Id of the IC card registration", required=True)
PLACE_ID = s("placeId", "KEYVOX place (facility) id", required=True)
ORDER_ID = s("orderId", "Booking (order) id, 9 characters", required=True)
START = t("startTime", "Start of validity", vendor="sTime", required=True)
END = t("endTime", "End of validity", vendor="eTime", required=True)
START_OPT = t("startTime", "New start of validity", vendor="sTime")
END_OPT = t("endTime", "New end of validity", vendor="eTime")
PIN_CODE = F(
    "pinCode",
    "PIN of 4 to 8 digits; KEYVOX generates 6 digits when omitted",
    {"type": "string", "pattern": A.PIN_PATTERN},
)
TARGET_NAME = s("targetName", "Name of the holder shown in the KEYVOX console", maxLength=100)
BOX_SIZE = F(
    "boxSize",
    "Box size: 1 small, 2 medium, 3 large",
    {"type": "string", "enum": ["1", "2", "3"]},
)
CARD_CODE = s("cardCode", "Card number (8 to 20 hexadecimal characters)", required=True)
CARD_NAME = s("cardName", "Label of the card in the console")

STR = {"type": "string"}
PIN_OUTPUT = obj(
    {
        "pinId": STR,
        "pinCode": STR,
        "qrCode": STR,
        "shortQrUrl": {"type": "string", "description": "Short key URL to give the guest"},
        "sTime": STR,
        "eTime": STR,
        "targetName": STR,
    },
    ["pinId", "pinCode"],
)
PIN_SAMPLE = {
    "pinId": "5e901978ef16f912aa9aaaa7",
    "pinCode": "482913",
    "qrCode": "Yc1oQ2b8sV3dL0pXr7tK9uZ4mN6aE5wF",
    "shortQrUrl": "https://kvx.sh/a8Fk2LmQ",
    "sTime": "1775019600",
    "eTime": "1775106000",
    "targetName": "Hanako Yamada",
}
