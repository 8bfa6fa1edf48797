# Convenience targets; each is one script, so CI and people run the same thing.
.PHONY: test test-arm test-py310 bench

test:        ## the whole suite (README command 2, what CI runs)
	bash scripts/test.sh

test-arm:    ## the aarch64 lane under qemu: wheel, tests as a Pi 4, parity with x86_64, Pi 4 vs Pi 5 detection
	bash scripts/arm/lane.sh

test-py310:  ## the suite on Python 3.10 (Ubuntu 22.04, JetPack 6): onnxruntime 1.23, Pillow 12
	bash scripts/py310.sh

bench:       ## the main job (README command 1)
	bash scripts/quickstart.sh
