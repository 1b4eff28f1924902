"""Thin handlers and the routing table."""
