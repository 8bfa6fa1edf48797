"""``edgert fleet``, a room beside bench: the same commands on many devices at once, and bulk inference on all of
them, on Dask distributed (the ``fleet`` extra). edgert adds no scheduler, transport or retry logic of its own: a
device is a Dask worker with a device label, and the fleet asks the scheduler for work on that label."""
