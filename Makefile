# Migration verbs per service, each a thin call of the schemadiff CLI.
# The CLI reads the database URL from the service's variable itself
# (CORTEX_DATABASE_URL, POSTAL_DATABASE_URL; see [tool.schemadiff] in pyproject.toml).
#
#   make migrate-up                      SERVICE=postal
#   make migrate-down                    (reverts one migration)
#   make migrate-down ALLOW_DESTRUCTIVE=yes  (consent, without a terminal, to down files that delete data)
#   make migrate-create NAME=add_slug    (generate: the verified migration to the desired state)
#   make migrate-new NAME=backfill_slugs (an empty pair for a data migration, as `migrate create -seq`)
#   make migrate-goto VERSION=3
#   make migrate-force VERSION=3         (after repairing a dirty database by hand)
#   make migrate-version
#
# SERVICE, NAME and VERSION are values, never code:
# - read with $(value ...), so make does not expand a `$(shell ...)` or `$(VAR)`
#   written inside them (make-level injection);
# - single-quoted for the shell (q below), so NAME='x; rm -rf ~' is one odd
#   argument for schemadiff to refuse, never a command;
# - given after `--` (or glued to their option, `--to=...`), so a value that
#   starts with `-` (SERVICE=--db=postgres://elsewhere) is an argument, never
#   an option.
# What a Makefile cannot stop: make's own syntax on its command line runs
# before this file is read (`make 'SERVICE:=$(shell ...)'`, `--eval`), and
# SCHEMADIFF names the program to run. Whoever can type those can run anything.

SERVICE ?= cortex
SCHEMADIFF ?= schemadiff

# make exports variables set on its command line to the recipes' environment,
# expanding them on the way (so `$(shell ...)` inside would run): these are
# arguments, not environment.
unexport SERVICE NAME VERSION ALLOW_DESTRUCTIVE

# A line break would end the recipe's shell command inside the quotes.
define newline


endef
$(foreach var,SERVICE NAME VERSION,$(if $(findstring $(newline),$(value $(var))),\
  $(error $(var) must not contain a line break)))

# q: one shell word, whatever the value holds ('  ->  '\'' inside single quotes).
q = '$(subst ','\'',$(1))'
# The raw values (nothing in them is expanded), quoted.
service = $(call q,$(value SERVICE))
name = $(call q,$(value NAME))
version = $(call q,$(value VERSION))
# Consent to down files that delete data (apply asks on a terminal; a
# pipeline has none): only the literal value yes gives it.
destructive = $(if $(filter yes,$(value ALLOW_DESTRUCTIVE)),--allow-destructive)

.PHONY: migrate-up migrate-down migrate-create migrate-new migrate-force migrate-version migrate-goto

migrate-up:
	$(SCHEMADIFF) apply -- $(service)

migrate-down:
	$(SCHEMADIFF) apply --down 1 $(destructive) -- $(service)

migrate-create:
	@test -n $(name) || { echo "usage: make migrate-create NAME=<what_it_does> [SERVICE=...]" >&2; exit 2; }
	$(SCHEMADIFF) generate -- $(name) $(service)

migrate-new:
	@test -n $(name) || { echo "usage: make migrate-new NAME=<what_it_does> [SERVICE=...]" >&2; exit 2; }
	$(SCHEMADIFF) new -- $(name) $(service)

migrate-force:
	@test -n $(version) || { echo "usage: make migrate-force VERSION=<n> [SERVICE=...]" >&2; exit 2; }
	$(SCHEMADIFF) force -- $(version) $(service)

migrate-version:
	$(SCHEMADIFF) status -- $(service)

migrate-goto:
	@test -n $(version) || { echo "usage: make migrate-goto VERSION=<n> [SERVICE=...]" >&2; exit 2; }
	$(SCHEMADIFF) apply --to=$(version) $(destructive) -- $(service)
