"""What every HTTP route shares: bounded parameter parsing, body limits, security headers.

Components keep their own routes; this package holds only the rules that must be the same
on each of them, so that a hostile request is refused the same way everywhere.
"""
