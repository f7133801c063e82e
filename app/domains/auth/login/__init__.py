"""Logging in: the credentials a login checks (the password, then the second factor) and the
second factor itself (an authenticator app's codes and recovery codes)."""
