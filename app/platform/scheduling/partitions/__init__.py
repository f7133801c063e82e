"""The ledger's monthly partitions (PostgreSQL): see queries.py."""
