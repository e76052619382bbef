"""Mailers: adapters behind the Mailer port."""
