"""The auth service: Accounts, roles, JWT issuing (JWKS), service credentials, staff sign-in for every admin."""
