"""Passwords, tokens, encryption at rest and one-time codes."""
