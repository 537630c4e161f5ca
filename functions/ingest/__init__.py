"""Ingest function: write events into the chain and read them back (POST/GET /events, /integrity/verify)."""
