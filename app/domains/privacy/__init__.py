"""Privacy: erasure of a person's data on request or after the clinic's retention period."""
