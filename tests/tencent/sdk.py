"""Official-SDK clients pointed at the double, configured the documented way."""

from __future__ import annotations

from portable_creds_tencent.testing import TencentDouble
from qcloud_cos import CosConfig, CosS3Client
from tencentcloud.cam.v20190116 import cam_client
from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sts.v20180813 import sts_client


def cos(d: TencentDouble, secret_id: str, secret_key: str, token: str | None = None) -> CosS3Client:
    conf = CosConfig(
        Region=d.region,
        SecretId=secret_id,
        SecretKey=secret_key,
        Token=token,
        Scheme="http",
        IP="127.0.0.1",
        Port=d.port,
    )
    return CosS3Client(conf, retry=0)


def root_cos(d: TencentDouble) -> CosS3Client:
    return cos(d, d.root.secret_id, d.root.secret_key)


def profile(d: TencentDouble) -> ClientProfile:
    return ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=d.endpoint))


def cam(
    d: TencentDouble,
    secret_id: str | None = None,
    secret_key: str | None = None,
    token: str | None = None,
) -> cam_client.CamClient:
    cred = credential.Credential(
        secret_id or d.root.secret_id, secret_key or d.root.secret_key, token
    )
    return cam_client.CamClient(cred, "", profile(d))


def sts(
    d: TencentDouble,
    secret_id: str | None = None,
    secret_key: str | None = None,
    token: str | None = None,
) -> sts_client.StsClient:
    cred = credential.Credential(
        secret_id or d.root.secret_id, secret_key or d.root.secret_key, token
    )
    return sts_client.StsClient(cred, d.region, profile(d))


def unsigned_sts(d: TencentDouble) -> CommonClient:
    return CommonClient("sts", "2018-08-13", None, d.region, profile(d))
