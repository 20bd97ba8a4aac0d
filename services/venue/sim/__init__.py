"""A local BingX USDT-M perpetual futures venue: REST, WebSockets, matching engine, faults.

Run it with ``python -m services.venue.sim``; build it in-process with
:func:`services.venue.sim.app.build_app`. See docs/simulator.md.
"""
