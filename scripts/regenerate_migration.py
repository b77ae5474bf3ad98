"""Rewrite the initial migration from the models (allowed until the first release).

Run with `make migration`. After the first release, add new revisions with
`alembic revision --autogenerate` instead of rewriting this one.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command

from infranet.storage.migrate import MIGRATIONS, alembic_config

INITIAL = "0001"


def main() -> None:
    for old in (MIGRATIONS / "versions").glob(f"{INITIAL}_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = alembic_config(f"sqlite:///{Path(tmp) / 'empty.db'}")
        command.revision(cfg, message="initial schema", autogenerate=True, rev_id=INITIAL)
    written = next((MIGRATIONS / "versions").glob(f"{INITIAL}_*.py"))
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(written)], check=False)
    subprocess.run([sys.executable, "-m", "ruff", "check", "-q", "--fix", str(written)],
                   check=False)
    print(f"wrote {written}")


if __name__ == "__main__":
    main()
