"""What a worker does with a queued message: claim it, send it (alone or in a batch, within the
provider rate limit), record the outcome, recover stuck sends."""
