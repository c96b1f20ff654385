"""Start signing with a new key; the JWKS keeps publishing the previous one (see the README)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from auth_service.accounts.keys import (
    generate_private_key,
    key_directory,
    key_ring,
    new_kid,
    private_key_pem,
)


class Command(BaseCommand):
    help = (
        "Rotate the JWT signing key. With a key directory (JWT_SIGNING_KEYS_DIR, var/keys in "
        "development) a new <kid>.pem is written and becomes the signing key; running instances "
        "pick it up without a restart. With --print a new key is printed for JWT_SIGNING_KEYS."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--keep",
            type=int,
            default=3,
            help="How many keys to keep in the directory, newest first (at least 2; default 3).",
        )
        parser.add_argument(
            "--print",
            action="store_true",
            dest="print_only",
            help="Only print a new kid and PEM (for keys held in JWT_SIGNING_KEYS); write nothing.",
        )

    def handle(self, *args: Any, keep: int, print_only: bool, **options: Any) -> None:
        if print_only:
            kid = new_kid()
            self.stdout.write(f"kid: {kid}\n{private_key_pem(generate_private_key()).decode()}")
            return
        if keep < 2:
            raise CommandError("--keep must be at least 2: the previous key verifies tokens in flight.")
        directory = key_directory()
        if directory is None:
            raise CommandError(
                "The keys come from JWT_SIGNING_KEYS; add a new key there (use --print) and restart "
                "the auth instances one by one, as the README describes."
            )
        kid = directory.add_key(keep=keep)
        ring = key_ring()
        self.stdout.write(f"new signing key {kid}; published: {', '.join(ring.published_kids())}")
