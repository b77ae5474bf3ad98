"""The network itself: its organisations and their directory, the members who speak for
them, roles and requests to join, and referrals of clients between organisations (with
their retention purge).

Next to `calendar` and `newsletter`, on top of `storage` (engine, sessions, models, audit),
which it uses and which knows nothing of it.
"""
