"""portable-creds: client-side encrypted, tenant-isolated credential storage.

Importing this package stays light: no cloud SDK is imported until a driver is opened.
"""

from __future__ import annotations

__version__ = "0.1.0"
