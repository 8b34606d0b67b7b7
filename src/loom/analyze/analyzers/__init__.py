"""The analyzers, one per module. Each defines ``CODES`` (the codes it may report) and
``run(ctx) -> Iterator[Finding]``; ``loom.analyze.registry`` lists them."""
