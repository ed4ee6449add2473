# The two commands of the README:
#   make demo   set up .venv if needed, then run the main job on bundled data
#   make test   set up .venv if needed, then run the test suite
# Both are idempotent: the environment is built once (see tools/install_env.sh).
VENV ?= .venv
PYTHON := $(VENV)/bin/python
STAMP := $(VENV)/.mmspectral-installed
PYTEST_ARGS ?=

.PHONY: install demo test test-slow lint clean-venv

install: $(STAMP)

$(STAMP): tools/install_env.sh setup.py requirements/*.txt
	VENV=$(VENV) bash tools/install_env.sh
	@touch $@

demo: $(STAMP)
	$(PYTHON) tools/demo.py

test: $(STAMP)
	$(PYTHON) -m pytest tests --durations=40 $(PYTEST_ARGS)

# end-to-end runs that are too slow for every CI run
test-slow: $(STAMP)
	$(PYTHON) -m pytest tests -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(PYTHON) -m pip install -q flake8 isort
	$(PYTHON) -m flake8 mmspectral tools tests configs
	$(PYTHON) -m isort --check-only --diff mmspectral tools tests configs

clean-venv:
	rm -rf $(VENV)
