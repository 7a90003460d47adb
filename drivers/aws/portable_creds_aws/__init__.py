"""AWS S3 + STS web-identity driver for portable-creds (also Ceph RGW).

Importing this package is cheap; boto3/botocore load when a store is opened.
"""

__all__ = ["S3Driver"]


def __getattr__(name: str) -> object:
    if name == "S3Driver":
        from .driver import S3Driver

        return S3Driver
    raise AttributeError(name)
