"""Telling people about tasks: reminder and escalation timers, overdue notices, digests."""
