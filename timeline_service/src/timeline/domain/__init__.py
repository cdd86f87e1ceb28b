"""The Timeline Service's core: ordering and paging rules, with no I/O."""
