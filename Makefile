# The two commands a newcomer needs (see README.md):
#   make demo   set everything up, then run the main job
#   make test   set everything up, then run the test suite
PYTEST_ARGS ?=

.PHONY: setup setup-test demo test lock

setup:
	scripts/setup.sh runtime

setup-test:
	scripts/setup.sh test

demo: setup
	.venv/bin/tf-dualenc pipeline run

test: setup-test
	.venv/bin/tf-dualenc doctor --strict
	.venv/bin/python -m pytest $(PYTEST_ARGS)

# Re-compile the pinned locks after editing requirements/*.in.
lock:
	.venv/bin/uv pip compile requirements/requirements.in --override requirements/overrides.txt --python-version 3.11 -o requirements/lock.txt
	.venv/bin/uv pip compile requirements/test.in --override requirements/overrides.txt --python-version 3.11 -o requirements/lock-test.txt
