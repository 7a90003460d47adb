"""A local Tencent Cloud double (COS + STS + CAM) for offline tests.

It verifies COS ``q-sign`` and TC3 signatures with the real secrets it issued, expires temporary
credentials, validates OIDC tokens against the IdP registered in CAM and evaluates CAM policies
(identity, session and bucket policies). Point the official SDKs at it with
``CosConfig(Scheme="http", IP=double.host, Port=double.port, ...)`` and
``HttpProfile(protocol="http", endpoint=double.endpoint)``.
"""

from .account import AccessKey, Session
from .faults import Faults
from .oidc import TestIdentityProvider
from .server import TencentDouble

__all__ = ["AccessKey", "Faults", "Session", "TencentDouble", "TestIdentityProvider"]
