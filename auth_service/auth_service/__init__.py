"""The auth service: accounts, roles, JWT issuing (JWKS), service credentials, staff sign-in to admins."""
