"""Thin adapters around boto3: the only code that talks to AWS."""
