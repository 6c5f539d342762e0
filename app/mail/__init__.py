"""Pure mail logic: parsing, recipients, attachment naming and the rewritten mail. No AWS imports."""
