"""Transactional outbox and idempotent consumers, shared by every service that sends messages."""
