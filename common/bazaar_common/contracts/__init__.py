"""Contracts between services, typed once and imported by both sides.

- :mod:`bazaar_common.contracts.messages`: every Celery message (task name, queue, payload).
- :mod:`bazaar_common.contracts.http`: every internal HTTP request/response body.

``from bazaar_common.contracts import X`` keeps working for the message names.
"""

from bazaar_common.contracts.messages import *  # noqa: F403
