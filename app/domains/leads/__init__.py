"""Leads, lead sources, duplicate detection."""
