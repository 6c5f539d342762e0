"""The sandbox's web view: the mails the SMTP door accepted, what the relay did with each, its trace, and
the queues' status, in a browser. See `sandbox.web.server`."""
