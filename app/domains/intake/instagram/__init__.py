"""Instagram direct messages in: Meta's webhook (handshake, signature, events) and the profile fetch."""
