"""asyncio tasks read from a paused target: where they are (``reader``) and their coroutine chains (``coroutines``)."""
