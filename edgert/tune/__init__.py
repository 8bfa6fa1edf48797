"""``edgert tune``, a room beside bench: the configuration of a bundle that meets a budget best on this device."""
