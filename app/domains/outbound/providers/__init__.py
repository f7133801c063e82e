"""The providers of outgoing messages: console, SMTP (one connection per worker, pipelined), SMS and
WhatsApp over HTTP (Twilio's Messages API), Instagram through Meta's Graph API."""
