"""AWS S3 + STS web-identity driver for portable-creds (also Ceph RGW).

Importing this package is cheap; boto3/botocore load when a store is opened.
"""

__all__ = ["S3Driver", "__version__"]

#: The distribution's version (hatch reads it from here: the one place it is written).
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    if name == "S3Driver":
        from .driver import S3Driver

        return S3Driver
    raise AttributeError(name)
