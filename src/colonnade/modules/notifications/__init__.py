"""Notifications: what the shop tells its customers, and the record of what it told them."""
