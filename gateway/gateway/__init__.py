"""The Bazaar API gateway: the one entry point for clients."""
