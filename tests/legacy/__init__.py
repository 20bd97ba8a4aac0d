"""Legacy flaw traceability: the flaw map, its completeness test, and the tests it names."""
