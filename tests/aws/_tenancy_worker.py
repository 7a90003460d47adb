"""A separate process that onboards/offboards wallets through the provisioner (stress tests).

Reads ``{"cfg": {...admin s3 settings...}, "ops": [["onboard"|"offboard", wallet], ...]}`` on
stdin; the administrator's keys come from the environment, as for ``portable-creds admin s3``.
"""

from __future__ import annotations

import json
import sys

from portable_creds_aws.admin.cli import provisioner_from


def main() -> int:
    job = json.load(sys.stdin)
    prov = provisioner_from(job["cfg"])
    for op, wallet in job["ops"]:
        if op == "onboard":
            prov.onboard(wallet)
        else:
            prov.offboard(wallet)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
