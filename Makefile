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

SERVICE ?= cortex
SCHEMADIFF ?= schemadiff

.PHONY: migrate-up migrate-down migrate-create migrate-new migrate-force migrate-version migrate-goto

migrate-up:
	$(SCHEMADIFF) apply $(SERVICE)

migrate-down:
	$(SCHEMADIFF) apply $(SERVICE) --down 1

migrate-create:
	@test -n "$(NAME)" || { echo "usage: make migrate-create NAME=<what_it_does> [SERVICE=$(SERVICE)]" >&2; exit 2; }
	$(SCHEMADIFF) generate $(NAME) $(SERVICE)

migrate-new:
	@test -n "$(NAME)" || { echo "usage: make migrate-new NAME=<what_it_does> [SERVICE=$(SERVICE)]" >&2; exit 2; }
	$(SCHEMADIFF) new $(NAME) $(SERVICE)

migrate-force:
	@test -n "$(VERSION)" || { echo "usage: make migrate-force VERSION=<n> [SERVICE=$(SERVICE)]" >&2; exit 2; }
	$(SCHEMADIFF) force $(VERSION) $(SERVICE)

migrate-version:
	$(SCHEMADIFF) status $(SERVICE)

migrate-goto:
	@test -n "$(VERSION)" || { echo "usage: make migrate-goto VERSION=<n> [SERVICE=$(SERVICE)]" >&2; exit 2; }
	$(SCHEMADIFF) apply $(SERVICE) --to $(VERSION)
