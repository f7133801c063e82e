"""Intake: how leads come in (staff and integrators through the API and its bulk import, websites
through signed web forms, families by SMS, email, phone or Instagram: inbound/, instagram/)."""
