"""The catalog service: The multi-merchant catalog and inventory (stock, reservations, ledger)."""
