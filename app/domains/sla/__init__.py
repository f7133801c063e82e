"""SLA clocks: speed to lead and first response, per lead, in the clinic's business time."""
