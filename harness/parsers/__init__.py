"""Parsers for what the guest prints. Each never raises on bad input."""
