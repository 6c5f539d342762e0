"""The whole pipeline on one machine: an SMTP front door like SES's, moto as the AWS endpoint, the
resources of `template.yaml`, and the function driven the way Lambda's SQS event source drives it.

`python -m sandbox` (or `make sandbox`) runs it in the foreground; see the README's sandbox section.
"""
