"""Anchor function: hourly signed digest of the chain (Merkle root, chain head) in Object-Locked S3."""
