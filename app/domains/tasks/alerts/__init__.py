"""Telling people about tasks: reminder and escalation timers, overdue notices, digests, and
handing a departing owner's tasks and reminders over."""
