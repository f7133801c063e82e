"""The seeded default rules that need more than a line of defaults.py (app/domains/automation/defaults.py)."""
