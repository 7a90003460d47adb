"""``python -m portable_creds``: the same CLI as the ``portable-creds`` script.

Useful where the script directory is not on ``PATH`` (``python -m pip install --user``, a venv
that is not activated) and to pin the interpreter: ``python3.12 -m portable_creds list``.
"""

from __future__ import annotations

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
