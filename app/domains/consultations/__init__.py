"""Consultations: booked from the API or a booking system's signed webhook, reminded, confirmed by a
reply, checked in, or caught as no-shows on their own (docs/features/consultations.md)."""
