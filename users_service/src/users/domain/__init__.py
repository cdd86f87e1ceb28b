"""The Users Service's core: rules and value objects, with no I/O."""
