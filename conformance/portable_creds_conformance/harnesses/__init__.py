"""Harnesses for the drivers that ship with portable-creds itself."""
