// Policy: filled in by the Policy issue.
