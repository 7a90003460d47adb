"""The operator's intended tenant set, one S3 object per wallet, separate from the IAM state.

Why: IAM is the *effect* of onboarding; if the effect is the only record, a write that IAM
silently loses (RGW rewrites a role's whole object on every inline-policy change, so two
concurrent writers can undo each other) or an offboarded tenant that a stale writer puts back
leaves no trace, and ``verify`` cannot tell. The intent record is written first, by the
operator's own command, and ``verify`` diffs IAM against it, so both show up as drift.

Layout (admin-only: tenant policies only ever cover ``<prefix>/<wallet>/``, and the lifecycle
rule only ``<prefix>/``)::

    portable-creds-admin/<prefix>/<role_name>/onboarded/<wallet>    exists <=> wallet is intended
    portable-creds-admin/<prefix>/<role_name>/offboarded/<wallet>   history: was offboarded

One object per wallet means concurrent onboard/offboard of *different* wallets never
read-modify-write a shared document; the same wallet is last-writer-wins (S3 PUT/DELETE are
atomic), and the provisioner re-reads the record after changing IAM (see ``reconcile``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from portable_creds.names import validate_wallet

from ..errormap import SDK_ERRORS, error_code, http_status, map_botocore_error, map_client_error
from . import policies as P

ROOT = "portable-creds-admin"
ONBOARDED = "onboarded"
OFFBOARDED = "offboarded"


def record_prefix(d: P.Deployment, state: str) -> str:
    return f"{ROOT}/{d.prefix}/{d.role_name}/{state}/"


class IntentRecords:
    """Read and write the intended tenant set of one deployment (admin credentials)."""

    def __init__(self, d: P.Deployment, s3: Any) -> None:
        self.d = d
        self.s3 = s3

    def _key(self, state: str, wallet: str) -> str:
        return record_prefix(self.d, state) + validate_wallet(wallet)

    def _put(self, state: str, wallet: str) -> None:
        body = json.dumps(
            {
                "wallet": wallet,
                "state": state,
                "strategy": self.d.strategy,
                "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        ).encode()
        key = self._key(state, wallet)
        _s3_call(
            f"write intent record {key}",
            lambda: self.s3.put_object(
                Bucket=self.d.bucket, Key=key, Body=body, ContentType="application/json"
            ),
        )

    def _delete(self, state: str, wallet: str) -> None:
        key = self._key(state, wallet)
        _s3_call(
            f"delete intent record {key}",
            lambda: self.s3.delete_object(Bucket=self.d.bucket, Key=key),
        )

    def mark_onboarded(self, wallet: str) -> None:
        """Intent first: the onboarded record, then drop any offboarded marker."""
        self._put(ONBOARDED, wallet)
        self._delete(OFFBOARDED, wallet)

    def mark_offboarded(self, wallet: str) -> None:
        """The offboarded marker (so ``verify`` can name a resurrection), then drop intent."""
        self._put(OFFBOARDED, wallet)
        self._delete(ONBOARDED, wallet)

    def is_onboarded(self, wallet: str) -> bool:
        key = self._key(ONBOARDED, wallet)
        try:
            self.s3.head_object(Bucket=self.d.bucket, Key=key)
        except ClientError as exc:
            if http_status(exc) == 404 or error_code(exc) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise map_client_error(exc, what=f"read intent record {key}") from None
        except SDK_ERRORS as exc:
            raise map_botocore_error(exc, what=f"read intent record {key}") from None
        return True

    def onboarded(self) -> list[str]:
        return sorted(self._names(ONBOARDED))

    def offboarded(self) -> list[str]:
        return sorted(self._names(OFFBOARDED))

    def exists(self) -> bool:
        """Whether this deployment has ever recorded an intent (older deployments have not)."""
        for state in (ONBOARDED, OFFBOARDED):
            for _ in self._names(state):
                return True
        return False

    def _names(self, state: str) -> Iterator[str]:
        prefix = record_prefix(self.d, state)
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.d.bucket, "Prefix": prefix}
            if token:
                kwargs["ContinuationToken"] = token
            try:
                page: dict[str, Any] = self.s3.list_objects_v2(**kwargs)
            except ClientError as exc:
                if error_code(exc) == "NoSuchBucket":  # not applied yet: nothing recorded
                    return
                raise map_client_error(exc, what=f"list intent records {prefix}") from None
            except SDK_ERRORS as exc:
                raise map_botocore_error(exc, what=f"list intent records {prefix}") from None
            for obj in page.get("Contents", []):
                yield str(obj["Key"])[len(prefix) :]
            token = page.get("NextContinuationToken") if page.get("IsTruncated") else None
            if not token:
                return


def _s3_call(what: str, fn: Any) -> Any:
    try:
        return fn()
    except ClientError as exc:
        raise map_client_error(exc, what=what) from None
    except SDK_ERRORS as exc:
        raise map_botocore_error(exc, what=what) from None
