"""Fast unit tests of the relay's pure rules: no sockets, no Discord, no event loop."""
