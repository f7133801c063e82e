"""Who owns a lead: manual assignment, automatic policies, out-of-office hand-over."""
