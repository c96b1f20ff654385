"""Token verification, roles and service credentials shared by every service and the gateway."""
