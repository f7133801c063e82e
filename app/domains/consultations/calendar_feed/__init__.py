"""Each user's calendar as an iCalendar feed at a secret, rotatable URL: their open tasks and the
scheduled consultations of the leads they own. Under consultations, which it reads (listing.py) and
which already builds on tasks: under tasks, it would make the two domains import each other."""
