# Migration verbs per service, each a thin call of the schemadiff CLI.
# The CLI reads the database URL from the service's variable itself
# (CORTEX_DATABASE_URL, POSTAL_DATABASE_URL; see [tool.schemadiff] in pyproject.toml).
#
#   make migrate-up                      SERVICE=postal
#   make migrate-down                    (reverts one migration)
#   make migrate-create NAME=add_slug    (generate: the verified migration to the desired state)
#   make migrate-new NAME=backfill_slugs (an empty pair for a data migration, as `migrate create -seq`)
#   make migrate-goto VERSION=3
#   make migrate-force VERSION=3         (after repairing a dirty database by hand)
#   make migrate-version
#
# SERVICE, NAME and VERSION reach the shell single-quoted (q below), so a
# value such as NAME='x; rm -rf ~' is one odd argument for schemadiff to
# refuse, never a command.

SERVICE ?= cortex
SCHEMADIFF ?= schemadiff

# q: one shell word, whatever the value holds ('  ->  '\'' inside single quotes).
q = '$(subst ','\'',$(1))'

.PHONY: migrate-up migrate-down migrate-create migrate-new migrate-force migrate-version migrate-goto

migrate-up:
	$(SCHEMADIFF) apply $(call q,$(SERVICE))

migrate-down:
	$(SCHEMADIFF) apply $(call q,$(SERVICE)) --down 1

migrate-create:
	@test -n $(call q,$(NAME)) || { echo "usage: make migrate-create NAME=<what_it_does> [SERVICE=...]" >&2; exit 2; }
	$(SCHEMADIFF) generate $(call q,$(NAME)) $(call q,$(SERVICE))

migrate-new:
	@test -n $(call q,$(NAME)) || { echo "usage: make migrate-new NAME=<what_it_does> [SERVICE=...]" >&2; exit 2; }
	$(SCHEMADIFF) new $(call q,$(NAME)) $(call q,$(SERVICE))

migrate-force:
	@test -n $(call q,$(VERSION)) || { echo "usage: make migrate-force VERSION=<n> [SERVICE=...]" >&2; exit 2; }
	$(SCHEMADIFF) force $(call q,$(VERSION)) $(call q,$(SERVICE))

migrate-version:
	$(SCHEMADIFF) status $(call q,$(SERVICE))

migrate-goto:
	@test -n $(call q,$(VERSION)) || { echo "usage: make migrate-goto VERSION=<n> [SERVICE=...]" >&2; exit 2; }
	$(SCHEMADIFF) apply $(call q,$(SERVICE)) --to $(call q,$(VERSION))
