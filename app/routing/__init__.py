"""Who gets a mail besides the addresses its code names: recipient groups and per-device routes."""
