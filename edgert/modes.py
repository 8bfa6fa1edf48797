"""The session's memory modes by name, light enough for the command line's parser (the standard library only);
``edgert.session`` gives them their meaning.

``lean`` turns off the CPU memory arena: run-time buffers go back to the system after each call instead of
staying reserved for the largest batch seen. Weight prepacking stays on: turning it off saves no peak RSS here
and changes MatMulNBits outputs (another kernel path). benchmarks/memory_modes.py measures each option.
"""

MEMORY_MODES = ("default", "lean")
