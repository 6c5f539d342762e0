"""Alarm folding, pure: which mails are one alarm, what happens to each, and the mails the relay writes.

`fingerprint` says which mails are the same alarm and which are recoveries; `timeline` decides, for one
alarm, whether a mail is relayed or folded and when digests are due; `mails` writes the digests and the
other mails the relay sends about an alarm. No AWS and no clock here: the time is always passed in.
"""
