"""Each user's live event stream: the durable per-user feed (`stream_events`), its fan-out through
Redis pub/sub, and its replay after a reconnection. Served by the stream process (app/streaming);
written by the domains that know what concerns a user (docs/guides/event-stream.md)."""
