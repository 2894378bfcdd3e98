"""Realtime events: Redis pub/sub fan-out shared by API replicas and workers."""
