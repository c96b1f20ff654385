"""The shared DRF toolkit: strict input, the caller's identity.

* :class:`StrictSerializer`: a body field the endpoint does not accept is a 400 naming it
  (``Unknown field.``), reported together with the invalid ones; a field a client may read but not
  set (``read_only_names``) says ``This field is read-only.``
* :class:`StrictQueryParams` / :func:`reject_query_params`: the same for query parameters (and a
  parameter given twice is an error, not a guess).
* :func:`caller_id`: the calling user's id as a canonical UUID string; :func:`principal`: the
  caller as a typed :class:`Principal`.
* :func:`parse_body`: an internal endpoint's request body as its contract class
  (``bazaar_common.contracts.http``), or a 400 naming each field, in the same words as the
  serializers above.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

from rest_framework import serializers
from rest_framework.request import Request

from bazaar_common.auth.tokens import Principal
from bazaar_common.contracts.http import Body, MalformedBody
from bazaar_common.domain import Forbidden, InvalidInput, NotAuthenticated

UNKNOWN_FIELD = "Unknown field."
READ_ONLY_FIELD = "This field is read-only."
UNKNOWN_PARAMETER = "Unknown query parameter."
REPEATED_PARAMETER = "Give this parameter once."
# pydantic's words for a missing or unknown field, said the way every other endpoint says them.
_CONTRACT_WORDS = {"Field required": "This field is required.", "Extra inputs are not permitted": UNKNOWN_FIELD}
BodyT = TypeVar("BodyT", bound=Body)


class StrictSerializer(serializers.Serializer):
    """A request body with a field the endpoint does not accept is refused, not half-applied."""

    # Fields a client sees in responses but may not send (e.g. ids, timestamps).
    read_only_names: frozenset[str] = frozenset()

    def _refused_fields(self, data: Any) -> dict[str, list[str]]:
        if not isinstance(data, Mapping):
            return {}  # DRF reports the wrong type itself
        writable = {name for name, field in self.fields.items() if not field.read_only}
        return {
            str(key): [READ_ONLY_FIELD if key in self.read_only_names else UNKNOWN_FIELD]
            for key in sorted(data, key=str)
            if key not in writable
        }

    def to_internal_value(self, data: Any) -> Any:
        refused = self._refused_fields(data)
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            # Report the refused fields together with the invalid ones, in one answer.
            if refused and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**exc.detail, **refused}) from exc
            raise
        if refused:
            raise serializers.ValidationError(refused)
        return value


class StrictQueryParams(serializers.Serializer):
    """Query-parameter validation: unknown or repeated parameters are errors, never ignored."""

    def to_internal_value(self, data: Any) -> Any:
        errors = {}
        for name, values in data.lists():
            if name not in self.fields:
                errors[name] = [UNKNOWN_PARAMETER]
            elif len(values) > 1:
                errors[name] = [REPEATED_PARAMETER]
        if errors:
            raise serializers.ValidationError(errors)
        return super().to_internal_value({name: data.get(name) for name in data})


def reject_query_params(request: Request) -> None:
    """For endpoints that take no query parameters: any given is an error, not ignored."""
    if request.query_params:
        raise InvalidInput({name: [UNKNOWN_PARAMETER] for name in request.query_params})


def principal(request: Request) -> Principal:
    """Who calls (a user or a service), as the shared JWT authentication made them.

    DRF types ``request.user`` as Django's user; on every Bazaar endpoint behind the token
    authentication it is a :class:`Principal`, and anything else is refused here (401).
    """
    user = request.user
    if not isinstance(user, Principal):
        raise NotAuthenticated()
    return user


def caller_id(request: Request | Principal | object) -> str:
    """The calling user's id as a canonical UUID string (every Bazaar user id is a UUID).

    Takes the request, or its ``request.user``. A caller whose id is not a UUID (a service token)
    is not a user: 403.
    """
    caller = request.user if isinstance(request, Request) else request
    if not isinstance(caller, Principal):
        raise Forbidden("This endpoint is for signed-in users.")
    try:
        return str(uuid.UUID(caller.id))
    except (ValueError, TypeError) as exc:
        raise Forbidden("This caller is not a user.") from exc


def parse_body(contract: type[BodyT], data: Any) -> BodyT:
    """``data`` (a request's parsed JSON) as ``contract``, or :class:`InvalidInput` naming each field."""
    if not isinstance(data, Mapping):
        raise InvalidInput({"non_field_errors": ["Expected a JSON object."]})
    try:
        return contract.parse(dict(data))
    except MalformedBody as exc:
        raise InvalidInput(
            {path: [_CONTRACT_WORDS.get(reason, reason) for reason in reasons] for path, reasons in exc.errors.items()}
        ) from exc
