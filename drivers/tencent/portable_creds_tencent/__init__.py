"""Tencent Cloud driver for portable-creds: COS storage, STS/CAM federation, a provisioner,
and a local Tencent double (``portable_creds_tencent.testing``).

Importing this package imports nothing heavy; the SDKs load when a store is opened.
"""

from __future__ import annotations

__all__ = ["__version__"]
#: The distribution's version; pyproject.toml reads it from here (the one place it is written).
__version__ = "0.1.0"
