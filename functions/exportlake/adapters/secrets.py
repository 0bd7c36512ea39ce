"""The API credentials from Secrets Manager, through Powertools Parameters (cached between invocations)."""

from __future__ import annotations

import re
from typing import Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider

from exportlake.adapters.gateway import Credentials
from exportlake.domain.errors import ConfigError

CACHE_SECONDS = 300
#: The ``client_id`` the stack creates the secret with, until someone puts the real pair in.
PLACEHOLDER_CLIENT_ID = "REPLACE_ME"


#: Where the fix for a secret under a customer-managed key is explained.
KEY_FIX = "the functions need kms:Decrypt on its key: existingSecretKmsKeyArn (docs/deploy.md#3-the-secret-and-its-key)"


def unreadable(exc: BaseException) -> str:
    """Why a secret could not be read, in words (never its value: a JSON error's text is not repeated)."""
    if "Transform" in type(exc).__name__:
        return "its value is not valid JSON"
    text = str(exc)
    if "KMS" in text:  # Secrets Manager decrypts with the caller's identity
        return f"Secrets Manager could not decrypt it with its KMS key; {KEY_FIX}"
    code = re.search(r"\(([A-Za-z.]+)\)", text)
    return f"AWS refused it ({code.group(1)})" if code else "AWS refused it"


class SecretCredentials:
    """Reads ``{"client_id", "client_secret"}`` from a secret (name or ARN)."""

    def __init__(self, secrets_client: Any, secret_id: str):
        self._provider = SecretsProvider(boto3_client=secrets_client)
        self._secret_id = secret_id

    def __call__(self) -> Credentials:
        """The current credentials; raise ``ConfigError`` (without the value) when the secret is malformed."""
        try:
            value = self._provider.get(self._secret_id, transform="json", max_age=CACHE_SECONDS)
        except Exception as exc:  # the provider wraps JSON and API errors alike; never echo the value
            raise ConfigError(f"cannot read secret {self._secret_id}: {unreadable(exc)}") from None
        if not isinstance(value, dict):
            raise ConfigError(f"secret {self._secret_id} is not a JSON object")
        client_id, client_secret = value.get("client_id"), value.get("client_secret")
        if not isinstance(client_id, str) or not client_id or not isinstance(client_secret, str) or not client_secret:
            raise ConfigError(f"secret {self._secret_id} needs string fields client_id and client_secret")
        if client_id == PLACEHOLDER_CLIENT_ID:  # what the deployed stack puts there: say so, not "HTTP 401"
            raise ConfigError(
                f"secret {self._secret_id} still holds the placeholder client_id {PLACEHOLDER_CLIENT_ID}: put the "
                "gateway's client_id/client_secret in it (aws secretsmanager put-secret-value)"
            )
        return Credentials(client_id, client_secret)
