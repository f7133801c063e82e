"""A clinic's signing secrets: one per integration that signs its requests to the capture endpoints."""
