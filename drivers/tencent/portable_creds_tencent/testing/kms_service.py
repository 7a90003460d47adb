"""Tencent KMS (2019-01-18) emulation: symmetric CMKs, Encrypt/Decrypt/GenerateDataKey.

Served by ``ApiService`` (same port, same TC3 verification as STS/CAM). What it enforces, each
traceable to the SDK (``tencentcloud-sdk-python-kms``) or the KMS/CAM documentation:

* CAM on the key resource: every key action is evaluated as ``name/kms:<Action>`` on
  ``qcs::kms:<region>:uin/<owner>:key/creatorUin/<creator>/<KeyId>`` (the resource form of
  CAM's "resource-level permissions supported by KMS" table, with the account written
  ``uin/<uin>`` as in CAM's general resource syntax), against the caller's identity policies
  intersected with its session policy. A tenant session may use only the keys its role (and
  session) policy names. ``CreateKey``/``ListKeyDetail`` are evaluated on ``*``.
* The encryption context is bound: ``Decrypt`` with any other ``EncryptionContext`` string
  (byte for byte; stricter than a semantic JSON comparison) is refused with
  ``InvalidParameterValue.InvalidCiphertext`` (in Decrypt's documented error list; which code
  the real service uses for a wrong context is unverified).
* The ciphertext is opaque to clients (AES-256-GCM under the CMK's material, base64); it names
  its CMK, as Decrypt takes no KeyId. Disabled or pending-deletion keys refuse use.

Error codes are all in kms ``errorcodes.py`` or the common codes (tests/tencent check it).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import uuid
from collections.abc import Callable
from typing import Any

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .account import Account, Caller
from .cam_eval import evaluate

KMS_VERSION = "2019-01-18"
_MAGIC = b"TKD1"
_ALIAS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,59}$")
_KEY_ID = re.compile(r"^[A-Za-z0-9-]{1,128}$")
MAX_CONTEXT = 1024
MAX_PLAINTEXT = 4096
PENDING_DAYS = (7, 30)


class KmsError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.define(repr=False)
class Cmk:
    key_id: str
    alias: str
    description: str
    material: bytes
    creator_uin: str
    create_time: int
    state: str = "Enabled"
    deletion_date: int = 0

    def __repr__(self) -> str:
        return f"Cmk(key_id={self.key_id!r}, alias={self.alias!r}, state={self.state!r})"


class KmsService:
    """The account's CMKs and the KMS actions; ``routes`` is merged into ``ApiService``."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.keys: dict[str, Cmk] = {}
        self.calls: list[tuple[str, str]] = []
        """(action, KeyId) of every key use, for tests counting KMS calls."""

    def routes(self) -> dict[str, Callable[[dict[str, Any], Caller | None], dict[str, Any]]]:
        return {
            "CreateKey": self.create_key,
            "DescribeKey": self.describe_key,
            "ListKeyDetail": self.list_key_detail,
            "EnableKey": self.enable_key,
            "DisableKey": self.disable_key,
            "ScheduleKeyDeletion": self.schedule_key_deletion,
            "Encrypt": self.encrypt,
            "Decrypt": self.decrypt,
            "GenerateDataKey": self.generate_data_key,
        }

    # helpers ------------------------------------------------------------------------------
    def resource(self, key_id: str, creator: str | None = None) -> str:
        acct = self.account
        return (
            f"qcs::kms:{acct.region}:uin/{acct.owner_uin}:key/creatorUin/"
            f"{creator or acct.owner_uin}/{key_id}"
        )

    def _authorize(self, caller: Caller | None, action: str, resource: str) -> None:
        if caller is None:
            raise KmsError("AuthFailure.InvalidAuthorization", "this action must be signed")
        with self.account.lock:
            identity = self.account.identity_statements(caller)
        decision = evaluate(
            f"name/kms:{action}",
            resource,
            {},
            identity=identity,
            session=caller.session.session_policy if caller.session else None,
        )
        if not decision.allowed:
            # Decrypt/Encrypt/GenerateDataKey list UnauthorizedOperation (tencentcloud-sdk-go
            # kms/v20190118/client.go); the double uses it for every KMS refusal.
            raise KmsError("UnauthorizedOperation", f"not allowed: {decision.reason}")

    @staticmethod
    def _str(params: dict[str, Any], name: str, *, required: bool = True) -> str:
        value = params.get(name)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value):
            raise KmsError("MissingParameter" if value is None else "InvalidParameter",
                           f"{name} is required")
        return value

    def _key(self, key_id: str) -> Cmk:
        if not _KEY_ID.match(key_id):
            raise KmsError("InvalidParameterValue.InvalidKeyId", "KeyId is malformed")
        with self.account.lock:
            key = self.keys.get(key_id)
        if key is None:
            raise KmsError("ResourceUnavailable.CmkNotFound", "the CMK does not exist")
        return key

    def _usable_key(self, params: dict[str, Any], caller: Caller | None, action: str) -> Cmk:
        """The enabled CMK ``KeyId`` names, after CAM allows ``action`` on it."""
        key_id = self._str(params, "KeyId")
        self._authorize(caller, action, self.resource(key_id))
        key = self._key(key_id)
        self._usable(key)
        return key

    @staticmethod
    def _usable(key: Cmk) -> None:
        if key.state == "Disabled":
            raise KmsError("ResourceUnavailable.CmkDisabled", "the CMK is disabled")
        if key.state == "PendingDelete":
            raise KmsError("ResourceUnavailable.KeyPendingDelete", "the CMK is pending deletion")
        if key.state != "Enabled":
            raise KmsError("ResourceUnavailable.CmkStateNotSupport", f"the CMK is {key.state}")

    @staticmethod
    def _context(params: dict[str, Any]) -> bytes:
        text = params.get("EncryptionContext")
        if text is None or text == "":
            return b""
        if not isinstance(text, str) or len(text) > MAX_CONTEXT:
            raise KmsError("InvalidParameter", "EncryptionContext is a JSON string of <= 1024")
        try:
            parsed = json.loads(text)
        except ValueError:
            raise KmsError("InvalidParameter", "EncryptionContext is not JSON") from None
        if not isinstance(parsed, dict):
            raise KmsError("InvalidParameter", "EncryptionContext must be a JSON object")
        return text.encode()

    def _metadata(self, key: Cmk) -> dict[str, Any]:
        return {
            "KeyId": key.key_id,
            "Alias": key.alias,
            "CreateTime": key.create_time,
            "Description": key.description,
            "KeyState": key.state,
            "KeyUsage": "ENCRYPT_DECRYPT",
            "CreatorUin": int(key.creator_uin),
            "KeyRotationEnabled": False,
            "Owner": "user",
            "DeletionDate": key.deletion_date,
            "Origin": "TENCENT_KMS",
            "ResourceId": f"creatorUin/{key.creator_uin}/{key.key_id}",
        }

    def _seal(self, key: Cmk, plaintext: bytes, context: bytes) -> str:
        head = _MAGIC + bytes([len(key.key_id)]) + key.key_id.encode()
        nonce = os.urandom(12)
        sealed = AESGCM(key.material).encrypt(nonce, plaintext, head + context)
        return base64.b64encode(head + nonce + sealed).decode()

    def _open_blob(self, blob: str) -> tuple[Cmk, bytes, bytes]:
        try:
            raw = base64.b64decode(blob, validate=True)
        except (binascii.Error, ValueError):
            raise KmsError("InvalidParameterValue.InvalidCiphertext", "not base64") from None
        if len(raw) < 6 or raw[:4] != _MAGIC or len(raw) < 5 + raw[4] + 12 + 16:
            raise KmsError("InvalidParameterValue.InvalidCiphertext", "malformed ciphertext")
        n = raw[4]
        key_id = raw[5 : 5 + n].decode("ascii", "replace")
        with self.account.lock:
            key = self.keys.get(key_id)
        if key is None:
            raise KmsError("InvalidParameterValue.InvalidCiphertext", "no such key")
        return key, raw[: 5 + n], raw[5 + n :]

    # administration -----------------------------------------------------------------------
    def create_key(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        self._authorize(caller, "CreateKey", "*")
        alias = self._str(params, "Alias")
        if not _ALIAS.match(alias) or alias.startswith("kms-"):
            raise KmsError("InvalidParameterValue.InvalidAlias", "Alias is 1-60 of [A-Za-z0-9_-]")
        usage = params.get("KeyUsage") or "ENCRYPT_DECRYPT"
        if usage != "ENCRYPT_DECRYPT":
            raise KmsError("InvalidParameterValue.InvalidKeyUsage", "only symmetric keys here")
        assert caller is not None
        with self.account.lock:
            if any(k.alias == alias for k in self.keys.values()):
                raise KmsError("InvalidParameterValue.AliasAlreadyExists", "Alias is in use")
            key = Cmk(
                key_id=str(uuid.uuid4()),
                alias=alias,
                description=self._str(params, "Description", required=False),
                material=os.urandom(32),
                creator_uin=caller.uin if caller.kind != "session" else self.account.owner_uin,
                create_time=int(self.account.now()),
            )
            self.keys[key.key_id] = key
        return {
            "KeyId": key.key_id,
            "Alias": key.alias,
            "CreateTime": key.create_time,
            "Description": key.description,
            "KeyState": key.state,
            "KeyUsage": "ENCRYPT_DECRYPT",
        }

    def describe_key(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        key_id = self._str(params, "KeyId")
        self._authorize(caller, "DescribeKey", self.resource(key_id))
        return {"KeyMetadata": self._metadata(self._key(key_id))}

    def list_key_detail(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        self._authorize(caller, "ListKeyDetail", "*")
        alias = str(params.get("SearchKeyAlias") or "")
        offset = int(params.get("Offset") or 0)
        limit = int(params.get("Limit") or 10)
        with self.account.lock:
            found = sorted(
                (k for k in self.keys.values() if alias in k.alias), key=lambda k: k.create_time
            )
        return {
            "TotalCount": len(found),
            "KeyMetadatas": [self._metadata(k) for k in found[offset : offset + limit]],
        }

    def _set_state(self, action: str, params: dict[str, Any], caller: Caller | None) -> Cmk:
        key_id = self._str(params, "KeyId")
        self._authorize(caller, action, self.resource(key_id))
        return self._key(key_id)

    def enable_key(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        key = self._set_state("EnableKey", params, caller)
        with self.account.lock:
            if key.state == "PendingDelete":
                raise KmsError("ResourceUnavailable.CmkStateNotSupport", "pending deletion")
            key.state = "Enabled"
        return {}

    def disable_key(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        key = self._set_state("DisableKey", params, caller)
        with self.account.lock:
            if key.state == "PendingDelete":
                raise KmsError("ResourceUnavailable.CmkStateNotSupport", "pending deletion")
            key.state = "Disabled"
        return {}

    def schedule_key_deletion(
        self, params: dict[str, Any], caller: Caller | None
    ) -> dict[str, Any]:
        key = self._set_state("ScheduleKeyDeletion", params, caller)
        days = params.get("PendingWindowInDays")
        if not isinstance(days, int) or not PENDING_DAYS[0] <= days <= PENDING_DAYS[1]:
            raise KmsError(
                "InvalidParameter.InvalidPendingWindowInDays", "PendingWindowInDays is 7..30"
            )
        with self.account.lock:
            if key.state != "Disabled":
                raise KmsError(
                    "ResourceUnavailable.CmkShouldBeDisabled", "disable the CMK before deletion"
                )
            key.state = "PendingDelete"
            key.deletion_date = int(self.account.now()) + days * 86400
        return {"KeyId": key.key_id, "DeletionDate": key.deletion_date}

    # cryptography -------------------------------------------------------------------------
    def encrypt(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        key = self._usable_key(params, caller, "Encrypt")
        try:
            plaintext = base64.b64decode(self._str(params, "Plaintext"), validate=True)
        except (binascii.Error, ValueError):
            raise KmsError("InvalidParameterValue.InvalidPlaintext", "not base64") from None
        if len(plaintext) > MAX_PLAINTEXT:
            raise KmsError("InvalidParameterValue.InvalidPlaintext", "Plaintext is at most 4 KB")
        self.calls.append(("Encrypt", key.key_id))
        return {
            "CiphertextBlob": self._seal(key, plaintext, self._context(params)),
            "KeyId": key.key_id,
        }

    def generate_data_key(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        key = self._usable_key(params, caller, "GenerateDataKey")
        size = params.get("NumberOfBytes")
        spec = params.get("KeySpec")
        if size is not None:
            if not isinstance(size, int) or not 1 <= size <= 1024:
                raise KmsError("InvalidParameter", "NumberOfBytes is 1..1024")
        elif spec in ("AES_128", "AES_256"):
            size = 16 if spec == "AES_128" else 32
        else:
            raise KmsError("InvalidParameter", "KeySpec (AES_128/AES_256) or NumberOfBytes")
        dek = os.urandom(size)
        self.calls.append(("GenerateDataKey", key.key_id))
        return {
            "KeyId": key.key_id,
            "Plaintext": base64.b64encode(dek).decode(),
            "CiphertextBlob": self._seal(key, dek, self._context(params)),
        }

    def decrypt(self, params: dict[str, Any], caller: Caller | None) -> dict[str, Any]:
        key, head, rest = self._open_blob(self._str(params, "CiphertextBlob"))
        self._authorize(caller, "Decrypt", self.resource(key.key_id, key.creator_uin))
        self._usable(key)
        context = self._context(params)
        self.calls.append(("Decrypt", key.key_id))
        try:
            plaintext = AESGCM(key.material).decrypt(rest[:12], rest[12:], head + context)
        except InvalidTag:
            raise KmsError(
                "InvalidParameterValue.InvalidCiphertext",
                "the ciphertext does not open with this EncryptionContext",
            ) from None
        return {"KeyId": key.key_id, "Plaintext": base64.b64encode(plaintext).decode()}
