"""Availability: consultation types, providers and chairs with their hours, closures, the booking
settings, providers' busy times from their own calendar feeds, and the pure slot arithmetic."""
