"""Each user's open tasks as an iCalendar feed at a secret, rotatable URL."""
