"""Shared building blocks of the Bazaar services. Nothing here knows any service's models."""
