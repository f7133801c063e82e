"""Read-only reports: funnel, sources, coordinators, lost reasons, speed to lead, follow-up effectiveness."""
