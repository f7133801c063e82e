"""The interaction log of a lead: calls and outcomes, emails, SMS, notes, stage and owner changes."""
