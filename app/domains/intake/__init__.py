"""Intake: how leads come in (staff and integrators through the API, websites through signed web forms)."""
