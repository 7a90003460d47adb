"""Run a double in its own process (for benchmarks and manual experiments).

``python -m portable_creds_tencent.testing.serve [BUCKET ...]`` prints one JSON line with the
port, account ids and the root API key, then serves until stdin closes (so the parent process
owns its lifetime). The key is the double's own, fake, and only valid against this process.
"""

from __future__ import annotations

import json
import sys

from .server import TencentDouble


def main(argv: list[str]) -> int:
    with TencentDouble() as double:
        buckets = [double.create_bucket(name) for name in argv]
        info = {
            "port": double.port,
            "endpoint": double.endpoint,
            "owner_uin": double.owner_uin,
            "appid": double.appid,
            "region": double.region,
            "buckets": buckets,
            "secret_id": double.root.secret_id,
            "secret_key": double.root.secret_key,
        }
        print(json.dumps(info), flush=True)
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
