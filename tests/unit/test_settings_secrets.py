"""Secrets come only from the environment, and production refuses to start without good ones."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from colonnade.app import create_app
from colonnade.kernel.settings import Settings

STRONG = "a-production-signing-key-of-48-characters-000000"
MASTER = "Y29sb25uYWRlLXRlc3RzLW9ubHkta2V5LTEyMzQ1Njc"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SECRET_KEY", "ENCRYPTION_KEY", "ENVIRONMENT"):
        monkeypatch.delenv(f"COLONNADE_{name}", raising=False)


def test_production_starts_with_both_keys_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLONNADE_ENVIRONMENT", "production")
    monkeypatch.setenv("COLONNADE_SECRET_KEY", STRONG)
    monkeypatch.setenv("COLONNADE_ENCRYPTION_KEY", MASTER)
    settings = Settings()
    assert settings.secret_key is not None
    assert settings.secret_key.get_secret_value() == STRONG
    assert STRONG not in repr(settings)
    create_app(settings)


@pytest.mark.parametrize(
    ("environment", "missing"),
    [
        ({"COLONNADE_ENCRYPTION_KEY": MASTER}, "COLONNADE_SECRET_KEY must be set"),
        ({"COLONNADE_SECRET_KEY": STRONG}, "COLONNADE_ENCRYPTION_KEY must be set"),
        (
            {"COLONNADE_SECRET_KEY": "x" * 31, "COLONNADE_ENCRYPTION_KEY": MASTER},
            "COLONNADE_SECRET_KEY must be at least 32 characters",
        ),
    ],
)
def test_production_refuses_to_start_without_good_secrets(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], missing: str
) -> None:
    monkeypatch.setenv("COLONNADE_ENVIRONMENT", "production")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match=missing):
        create_app()


def test_development_runs_without_keys() -> None:
    assert Settings().secret_key is None
    create_app(Settings(secret_key="short"))
