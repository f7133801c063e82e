"""A clinic's own sender identity (SMS number, Messaging Service, email domain): owned, and checked."""
