"""Bulk operations: a bulk job split into ledger chunks on the bulk queue, polled by the client."""
