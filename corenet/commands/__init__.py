"""Sub-commands of the ``corenet`` CLI, one module each with ``register(app)``; heavy imports stay inside."""
