"""SLA clocks: speed to lead and first response, per lead, in the clinic's business time; the
clocks of a lead's first attempt and contact, beside the tasks that make them."""
