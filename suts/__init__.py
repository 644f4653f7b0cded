"""Built-in SUT plugins. Each module registers its SUT through the ``register_suts`` hook."""
