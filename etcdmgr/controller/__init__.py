"""The leader's control loop: observe -> plan (pure) -> act, one mutating step per cycle."""
