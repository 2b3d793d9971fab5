"""Accounts and rights: who is asking (users, sessions, API keys) and what they may do."""
