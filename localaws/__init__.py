"""The relay's AWS account on this machine, built from template.yaml.

`template` turns the SAM template into a `Blueprint` (what one stack would create, names and values
resolved as CloudFormation resolves them); `provision` creates it in moto, in process (`mock_aws`) or
behind moto's server (`server`); `account` hands out clients, the functions' environments and what the
account saw (mail SES sent, messages SNS published). The sandbox, the demo, the benchmark and the tests
all stand on it, so a resource added to the template appears in each of them without further code.
"""
