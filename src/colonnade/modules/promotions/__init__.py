"""Promotions: discount codes with a window, a usage limit and rules of who may use them."""
