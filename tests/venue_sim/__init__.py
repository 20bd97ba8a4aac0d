"""Tests of the BingX simulator (services.venue.sim)."""
