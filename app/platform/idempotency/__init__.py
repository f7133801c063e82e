"""Idempotent POSTs: the `Idempotency-Key` header replays the first answer instead of writing twice."""
