"""Venues PINK trades on: the BingX simulator (``services.venue.sim``) and the venue service
(``python -m services.venue``), the BingX adapter behind ``pink.v1.VenueService``."""
