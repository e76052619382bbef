"""inventory module."""
