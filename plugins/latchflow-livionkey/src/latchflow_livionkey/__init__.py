"""latchflow plugin for LivionKey key automats (API V1 and API V2)."""
