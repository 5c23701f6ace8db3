"""What every subcommand shares: settings from the environment, with readable errors."""

from __future__ import annotations

from pydantic import ValidationError

from bestand.settings import Settings


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors()
        ]
        raise SystemExit("invalid settings (BESTAND_* environment):\n" + "\n".join(lines)) from None
