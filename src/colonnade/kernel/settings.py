"""Settings from COLONNADE_* environment variables. Only the composition root reads them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COLONNADE_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    database_url: str = "sqlite+aiosqlite:///./colonnade.db"
    # FULL survives power loss; NORMAL survives a crashed process only, and is faster.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    database_pool_size: int = Field(default=10, ge=1, le=200)
    secret_key: SecretStr | None = None
    # 32 random bytes, URL-safe base64 (`colonnade keys new`); wraps the keys of personal data.
    encryption_key: SecretStr | None = None
    access_token_ttl_seconds: int = Field(default=900, ge=30)
    base_currency: str = "USD"
    default_warehouse: str = "main"
    reservation_ttl_seconds: int = Field(default=900, ge=10)
    payment_provider: Literal["test_gateway", "stripe"] = "test_gateway"
    stripe_api_key: SecretStr | None = None
    stripe_timeout_seconds: float = Field(default=10, gt=0)
    cart_idle_seconds: int = Field(default=86_400, ge=60)
    # A checkout untouched this long is taken to be orphaned by a dead process and recovered.
    checkout_recovery_seconds: int = Field(default=60, ge=1)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if self.environment == "production" and self.secret_key is None:
            raise ValueError(
                "COLONNADE_SECRET_KEY must be set when COLONNADE_ENVIRONMENT=production"
            )
        if self.environment == "production" and self.encryption_key is None:
            raise ValueError(
                "COLONNADE_ENCRYPTION_KEY must be set when COLONNADE_ENVIRONMENT=production"
            )
        if self.payment_provider == "stripe" and self.stripe_api_key is None:
            raise ValueError("COLONNADE_STRIPE_API_KEY must be set for the stripe payment provider")
        return self
