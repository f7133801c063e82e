"""The outbox of domain events: written beside each change, read by automation."""
