"""Leads reaching the clinic by SMS, email or phone: the signed provider webhooks and what they record."""
