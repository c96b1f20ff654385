"""The profiles service: Profiles, addresses, preferences; privacy export and erasure."""
