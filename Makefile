# layered.eks_rds: everything a fresh machine needs, then the local stack,
# the gates and the demo. Every target is safe to re-run.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

ROOT        := $(CURDIR)
VENV        := $(ROOT)/.venv
BIN         := $(VENV)/bin
PYTHON      ?= python3
REQ_HASH    := $(shell cat test-requirements.txt | sha256sum | cut -c1-12)
VENV_STAMP  := $(VENV)/.installed-$(REQ_HASH)
COLL_LINK   := $(ROOT)/.collections/ansible_collections/layered/eks_rds
STACK_DIR   ?= $(ROOT)/.stack
BUILD       := $(ROOT)/build
VERSION     := $(shell sed -n 's/^version: *//p' galaxy.yml)
TARBALL     := $(BUILD)/layered-eks_rds-$(VERSION).tar.gz
COLL_BUILD  := $(BUILD)/collections/ansible_collections/layered/eks_rds
PY_VERSION   = $(shell $(BIN)/python -c "import sys; print('%d.%d' % sys.version_info[:2])")
SITE_PACKAGES = $(shell $(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
APT_PKGS    := postgresql postgresql-client curl ca-certificates git nftables iproute2 gcc libc6-dev libpam0g-dev python3-venv \
               openjdk-17-jdk-headless maven

export PATH := $(BIN):$(PATH)
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(ROOT)/.collections
export LAYERED_STACK_DIR := $(STACK_DIR)
export ANSIBLE_FORCE_COLOR := 0

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

# ---------------------------------------------------------------- setup
.PHONY: setup apt venv link k8s awscli scanners
setup: apt venv link k8s awscli scanners ## install everything (apt packages, .venv, AWS CLI, Go builds, scanners); idempotent

apt: ## Debian packages (PostgreSQL, nftables, iproute2, a C compiler and PAM headers, a JDK and Maven, curl, git) when missing
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v git >/dev/null || missing="$$missing git"; \
	command -v psql >/dev/null || missing="$$missing postgresql-client"; \
	command -v nft >/dev/null || missing="$$missing nftables"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	/usr/bin/python3 -c 'import ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	command -v cc >/dev/null || missing="$$missing gcc libc6-dev"; \
	test -f /usr/include/security/pam_modules.h || missing="$$missing libpam0g-dev"; \
	command -v javac >/dev/null || missing="$$missing openjdk-17-jdk-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -q; \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends $(APT_PKGS); \
	else echo "Debian packages present"; fi

venv: $(VENV_STAMP) ## Python venv from test-requirements.txt

$(VENV_STAMP): test-requirements.txt
	@echo "creating $(VENV) (a few minutes on first run)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -r test-requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

# The AWS CLI that the local stack's pods run (the programs of the AWS CLI
# images): its own venv, since awscli needs docutils and rsa older than .venv's.
# As root (the stack's agent runs pods), outside root's home so that pods
# running as non-root users can execute it.
# Built on Debian's Python, since .venv's interpreter may live in root's home too.
AWSCLI_CACHE   := $(if $(filter 0,$(shell id -u)),/var/cache,$(HOME)/.cache)/layered-eks-rds
AWSCLI_VENV    ?= $(AWSCLI_CACHE)/awscli-venv
AWSCLI_PYTHON  ?= /usr/bin/python3
AWSCLI_VERSION ?= 1.46.3
export LAYERED_AWSCLI_VENV := $(AWSCLI_VENV)
awscli: venv ## the AWS CLI for the stack's pods, in its own venv (cached outside the repo)
	@if "$(AWSCLI_VENV)/bin/aws" --version 2>&1 | grep -q "^aws-cli/$(AWSCLI_VERSION) " \
	    && [ "$$(readlink -f "$(AWSCLI_VENV)/bin/python3")" = "$$(readlink -f "$(AWSCLI_PYTHON)")" ]; then \
	  echo "AWS CLI $(AWSCLI_VERSION) present"; \
	else \
	  echo "installing the AWS CLI $(AWSCLI_VERSION) into $(AWSCLI_VENV)"; \
	  rm -rf "$(AWSCLI_VENV)"; \
	  $(AWSCLI_PYTHON) -m venv "$(AWSCLI_VENV)"; \
	  "$(AWSCLI_VENV)/bin/pip" install -q --disable-pip-version-check "awscli==$(AWSCLI_VERSION)"; \
	fi

link: $(COLL_LINK) ## .collections link so layered.eks_rds resolves from this checkout

$(COLL_LINK):
	@mkdir -p $(dir $@)
	@ln -sfn ../../.. $@

k8s: ## build kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kwok (cached outside the repo)
	@command -v go >/dev/null || { echo "Go >= 1.24 is required to build the local control plane"; exit 1; }
	@scripts/build-k8s.sh

# The manifest scanners of `make scan`, cached outside the repo: checkov in its
# own venv (its pins clash with .venv's), kube-score built with Go.
SCANNER_CACHE      := $(HOME)/.cache/layered-eks-rds
CHECKOV_VERSION    ?= 3.3.30
CHECKOV_VENV       ?= $(SCANNER_CACHE)/checkov-venv-$(CHECKOV_VERSION)
KUBE_SCORE_VERSION ?= v1.20.0
KUBE_SCORE         ?= $(SCANNER_CACHE)/kube-score-$(KUBE_SCORE_VERSION)/bin/kube-score
scanners: venv ## checkov (own venv) and kube-score for make scan (cached outside the repo)
	@if "$(CHECKOV_VENV)/bin/checkov" --version 2>/dev/null | grep -qx "$(CHECKOV_VERSION)"; then \
	  echo "checkov $(CHECKOV_VERSION) present"; \
	else \
	  echo "installing checkov $(CHECKOV_VERSION) into $(CHECKOV_VENV)"; \
	  rm -rf "$(CHECKOV_VENV)"; \
	  $(BIN)/python -m venv "$(CHECKOV_VENV)"; \
	  "$(CHECKOV_VENV)/bin/pip" install -q --disable-pip-version-check "checkov==$(CHECKOV_VERSION)"; \
	fi
	@if [ -x "$(KUBE_SCORE)" ]; then \
	  echo "kube-score $(KUBE_SCORE_VERSION) present"; \
	else \
	  command -v go >/dev/null || { echo "Go is required to build kube-score"; exit 1; }; \
	  echo "building kube-score $(KUBE_SCORE_VERSION) into $(dir $(KUBE_SCORE))"; \
	  mkdir -p "$(dir $(KUBE_SCORE))"; \
	  cd / && CGO_ENABLED=0 GOBIN="$(dir $(KUBE_SCORE))" go install -trimpath "github.com/zegl/kube-score/cmd/kube-score@$(KUBE_SCORE_VERSION)"; \
	fi

# ---------------------------------------------------------------- stack
.PHONY: up down reset status
up: setup ## start the local stack (moto, Kubernetes with kwok nodes, PostgreSQL, the enforcing agent)
	@scripts/stack.sh up

down: ## stop the local stack (state kept)
	@scripts/stack.sh down

reset: ## stop the local stack and delete its state
	@scripts/stack.sh reset

status: ## what runs
	@scripts/stack.sh status

# ---------------------------------------------------------------- gates
.PHONY: test lint scan sanity unit molecule e2e enforcement down-check build
test: up lint scan sanity unit molecule e2e enforcement down-check ## every gate, against the local stack
	@echo "make test: all gates passed"

lint: venv link ## ansible-lint (production), yamllint, ruff
	@echo "== ruff"; ruff check . && ruff format --check plugins tests
	@echo "== yamllint"; yamllint -s .
	@echo "== ansible-lint"; ansible-lint --strict

# The app role's manifests, rendered from its own templates with the local
# inventory's values (tests/manifests/render_app.yml), must pass both scanners;
# the findings that do not apply are skipped on the objects, with the reason.
MANIFESTS := $(BUILD)/manifests
APP_MANIFESTS := $(MANIFESTS)/app
DB_USER_MANIFESTS := $(MANIFESTS)/db_user
scan: venv link scanners ## render the app role's manifests and the db_user role's Job, scan them with checkov and kube-score
	@rm -rf $(MANIFESTS)
	@echo "== rendering the app role's manifests into $(APP_MANIFESTS)"; \
	  out=$$(ansible-playbook tests/manifests/render_app.yml -i inventories/local -e app_manifests_dir=$(APP_MANIFESTS) 2>&1) \
	  || { echo "$$out"; exit 1; }
	@echo "== rendering the db_user role's Job into $(DB_USER_MANIFESTS)"; \
	  out=$$(ansible-playbook tests/manifests/render_db_user.yml -i inventories/local \
	    -e db_user_manifests_dir=$(DB_USER_MANIFESTS) 2>&1) || { echo "$$out"; exit 1; }
	@echo "== checkov"; "$(CHECKOV_VENV)/bin/checkov" --framework kubernetes --skip-download --compact --quiet -d $(MANIFESTS)
	@echo "== kube-score"; for dir in $(MANIFESTS)/*/*/; do \
	  "$(KUBE_SCORE)" score --exit-one-on-warning --enable-optional-test container-seccomp-profile \
	    --enable-optional-test container-ports-check $$dir*.yml || exit 1; done

build: venv link ## build the collection tarball
	@mkdir -p $(BUILD)
	@ansible-galaxy collection build --force --output-path $(BUILD) >/dev/null
	@echo "built $(TARBALL)"

sanity: build ## ansible-test sanity on the built collection (plugins/, meta/)
	@rm -rf $(BUILD)/collections
	@ansible-galaxy collection install --force --no-deps -p $(BUILD)/collections $(TARBALL) >/dev/null
	@# dependencies for the import test: the collections bundled in .venv
	@for ns in amazon community kubernetes; do \
	  ln -sfn $(SITE_PACKAGES)/ansible_collections/$$ns $(BUILD)/collections/ansible_collections/$$ns; done
	@# ansible-test bootstraps pip in its sanity venvs with a cached get-pip script
	@pipv=$$(grep -oP "pip='\K[0-9.]+" $(SITE_PACKAGES)/ansible_test/_internal/python_requirements.py); \
	  mkdir -p $(HOME)/.ansible/test/cache; \
	  install -m 644 scripts/ansible-test-get-pip.py $(HOME)/.ansible/test/cache/get_pip_$${pipv//./_}.py
	@# its own git root, so ansible-test lists the installed files, not this checkout's
	@cd $(COLL_BUILD) && git init -q . && \
	  ansible-test sanity --venv --python $(PY_VERSION) --color no plugins/ meta/
	@scripts/check-docs.sh $(BUILD)/collections

unit: venv link ## pytest unit tests
	@# on two workers, a test file per worker at a time; the local stack's tests apart, since they
	@# patch moto in their process (tests/stack/moto_ext) and the plugins' tests need moto unpatched
	@pytest -n 2 --dist loadfile tests/unit --ignore tests/unit/stack
	@pytest -n 2 --dist loadfile tests/unit/stack

molecule: up ## molecule scenarios against the local stack
	@cd tests && for s in molecule/*/molecule.yml; do \
	  s=$${s#molecule/}; s=$${s%/molecule.yml}; echo "== molecule test -s $$s"; molecule test -s $$s; done

e2e: up ## site.yml -i inventories/local twice; the second run must change nothing
	@scripts/run-twice.sh site.yml -i inventories/local

enforcement: up jdbc-probe ## each layer holds and breaks on the local stack (uses what e2e converged)
	@pytest -p no:cacheprovider tests/enforcement

# The JVM probe of the JDBC path Metabase takes with IAM database authentication (tests/jdbc_probe, run by
# tests/enforcement/test_jdbc_iam.py). Maven keeps its downloads in ~/.m2; nothing is built while the jar
# is newer than the pom and the sources.
JDBC_PROBE     := tests/jdbc_probe
JDBC_PROBE_JAR := $(JDBC_PROBE)/target/jdbc-iam-probe.jar
.PHONY: jdbc-probe
jdbc-probe: $(JDBC_PROBE_JAR) ## build the JVM probe of Metabase's IAM JDBC path (Java 17, Maven)

$(JDBC_PROBE_JAR): $(JDBC_PROBE)/pom.xml $(shell find $(JDBC_PROBE)/src -type f)
	@command -v mvn >/dev/null || { echo "Maven and a Java 17 JDK are needed (make apt installs them)"; exit 1; }
	@echo "building $(JDBC_PROBE) with Maven"
	@mvn -q -B -f $(JDBC_PROBE)/pom.xml package
	@touch $@

down-check: ## make down leaves no network namespace, veth or nftables table behind
	@scripts/stack.sh down
	@scripts/stack.sh check-clean

# ---------------------------------------------------------------- demo
.PHONY: demo
demo: up ## start the stack, run site.yml -i inventories/local, print a summary
	@ansible-playbook site.yml -i inventories/local
	@ansible-playbook playbooks/summary.yml -i inventories/local
