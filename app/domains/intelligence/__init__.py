"""Follow-up intelligence: contact times, lead score, next best action, reply sentiment, forecast."""
