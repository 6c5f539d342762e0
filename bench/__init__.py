"""The benchmark (`make bench`): the function against the raw limit of its work, on mails up to 40 MB."""
