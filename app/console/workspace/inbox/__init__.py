"""The team inbox in the staff workspace (issue 59 item 2, the spec's conversations page): the list
(pages.py), what it and a thread show (reads.py), until when a thread may be snoozed (snoozing.py)."""
