"""Built-in SUT plugins. Each package registers its SUT through the ``register_suts`` hook."""
