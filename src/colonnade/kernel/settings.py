"""Settings from COLONNADE_* environment variables. Only the composition root reads them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Signing keys shorter than this can be brute-forced from a single token.
MIN_SECRET_KEY_LENGTH = 32


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
    refresh_token_ttl_seconds: int = Field(default=30 * 86_400, ge=60)
    # After this many failed logins for one e-mail address close together, each further one
    # locks the address: first for login_lock_seconds, doubling up to login_lock_max_seconds.
    login_lockout_threshold: int = Field(default=5, ge=1)
    login_lockout_window_seconds: int = Field(default=900, ge=1)
    login_lock_seconds: int = Field(default=30, ge=1)
    login_lock_max_seconds: int = Field(default=3600, ge=1)
    base_currency: str = "USD"
    # Markets and product titles are kept this long per process; other processes see a change
    # by staff within this time (the process that made it, at once). 0 turns the keeping off.
    reference_cache_seconds: float = Field(default=5.0, ge=0)
    default_warehouse: str = "main"
    reservation_ttl_seconds: int = Field(default=900, ge=10)
    payment_provider: Literal["test_gateway", "stripe"] = "test_gateway"
    stripe_api_key: SecretStr | None = None
    stripe_timeout_seconds: float = Field(default=10, gt=0)
    cart_idle_seconds: int = Field(default=86_400, ge=60)
    # A checkout untouched this long is taken to be orphaned by a dead process and recovered.
    checkout_recovery_seconds: int = Field(default=60, ge=1)
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    # Guest orders older than this lose their personal data (e-mail, address); amounts stay.
    guest_data_retention_days: int = Field(default=365, ge=1)
    log_level: str = "INFO"
    # Request bodies larger than this are refused (413) before anything reads them whole.
    max_body_bytes: int = Field(default=65_536, ge=1_024)
    # Browser origins allowed to call the API; empty means no cross-origin access at all.
    cors_origins: list[str] = Field(default_factory=list)
    # Set when clients reach the shop only over HTTPS: browsers are then told never to use HTTP.
    behind_https: bool = False
    # Requests per minute. Login per account stays above identity's lockout threshold, so a
    # locked account is told so (login_locked) rather than merely rate limited.
    rate_limit_login_per_address: int = Field(default=20, ge=1)
    rate_limit_login_per_account: int = Field(default=10, ge=1)
    rate_limit_registration_per_address: int = Field(default=10, ge=1)
    rate_limit_registration_per_email: int = Field(default=3, ge=1)
    # Generous per address: in a flash sale many real buyers share one address (mobile carrier
    # NAT, an office); the per-cart limit is what stops one client hammering a checkout. It
    # counts a client's retries under the same Idempotency-Key too, hence room for a burst.
    rate_limit_checkout_per_address: int = Field(default=600, ge=1)
    rate_limit_checkout_per_cart: int = Field(default=20, ge=1)

    @model_validator(mode="after")
    def _production_needs_secrets(self) -> Settings:
        if self.environment == "production" and self.secret_key is None:
            raise ValueError(
                "COLONNADE_SECRET_KEY must be set when COLONNADE_ENVIRONMENT=production"
            )
        if (
            self.environment == "production"
            and self.secret_key is not None
            and len(self.secret_key.get_secret_value()) < MIN_SECRET_KEY_LENGTH
        ):
            raise ValueError(
                f"COLONNADE_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters "
                "when COLONNADE_ENVIRONMENT=production"
            )
        if self.environment == "production" and self.encryption_key is None:
            raise ValueError(
                "COLONNADE_ENCRYPTION_KEY must be set when COLONNADE_ENVIRONMENT=production"
            )
        if self.payment_provider == "stripe" and self.stripe_api_key is None:
            raise ValueError("COLONNADE_STRIPE_API_KEY must be set for the stripe payment provider")
        return self
