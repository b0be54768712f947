"""What reads the pools and the server, never changing them: stats, history, fleet, health, advice.

Above the core and the Django side; the admin page, the views, the
``poolstats`` command and ``contrib/`` present what these modules compute.
"""
