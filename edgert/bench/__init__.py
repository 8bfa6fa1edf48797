"""`edgert bench` and `edgert compare`: measuring a model on this device. Needs the `bench` extra."""
