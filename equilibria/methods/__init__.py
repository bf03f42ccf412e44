"""The methods: each a plain-function core usable in any loop, and a trainer component."""
