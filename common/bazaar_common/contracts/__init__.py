"""Contracts between services, typed once and imported by both sides.

- :mod:`bazaar_common.contracts.messages`: every Celery message (task name, queue, payload).
- :mod:`bazaar_common.contracts.http`: every internal HTTP request/response body.

``from bazaar_common.contracts import X`` keeps working for the message names.
"""

from bazaar_common.contracts.messages import *  # noqa: F403

# ``messages.__all__`` lists the classes only; its constants belong to the flat API as well.
from bazaar_common.contracts.messages import (  # noqa: E402
    QUEUE_AUTH,
    QUEUE_CATALOG,
    QUEUE_ORDERS,
    QUEUE_PROFILES,
    SAGA_MESSAGES,
)

__all__ = [  # noqa: F405
    *messages.__all__,  # noqa: F405
    "QUEUE_AUTH",
    "QUEUE_CATALOG",
    "QUEUE_ORDERS",
    "QUEUE_PROFILES",
    "SAGA_MESSAGES",
]
