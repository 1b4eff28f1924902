"""Payments: fees, orders, pay links, the WeChat Pay v3 client, notification checks, reconciliation.

docs/payments.md describes the flow; bot/web/pay.py serves the page and the notification endpoint.
"""
