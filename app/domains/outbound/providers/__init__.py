"""The providers of outgoing messages: console, SMTP (one connection per worker, pipelined), SMS over HTTP."""
