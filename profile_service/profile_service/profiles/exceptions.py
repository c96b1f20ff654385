"""Errors of the profile domain, as API exceptions rendered into problem details."""

from __future__ import annotations

from rest_framework import exceptions, status


class ProfileErased(exceptions.APIException):
    """The user erased their data; their still-valid token must not bring a profile back."""

    status_code = status.HTTP_410_GONE
    default_detail = "This account's data has been erased."
    default_code = "erased"


class PasswordIncorrect(exceptions.PermissionDenied):
    default_detail = {"password": ["The password is incorrect."]}
    default_code = "password_incorrect"
