"""Password hashing: Argon2id at OWASP's minimum, sized for sign-in throughput.

Django's default Argon2 parameters (100 MiB, t=2, p=8) cost ~230 ms of CPU per hash on a 2-core
box, so a single auth instance signed in 1–2 users a second. OWASP's Password Storage Cheat Sheet
lists equivalent Argon2id settings; its first (minimum) one is m=19 MiB, t=2, p=1, which costs
about a tenth of that and is what Bazaar uses. The algorithm name stays ``argon2``: a hash made
with other parameters still verifies and Django re-hashes it with these at the next successful
sign-in (``Argon2PasswordHasher.must_update`` compares the parameters).
"""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher

MEMORY_KIB = 19 * 1024
TIME_COST = 2
PARALLELISM = 1


class BazaarArgon2PasswordHasher(Argon2PasswordHasher):
    memory_cost = MEMORY_KIB
    time_cost = TIME_COST
    parallelism = PARALLELISM
