"""The family's booking page (issue 62): the clinic's public page and a lead's signed link, the
confirmation's link to move or cancel, their settings (embedding origins, the change cut-off)."""
