"""Pure-Python reference twins of the native core: same API, same bytes, readable."""
