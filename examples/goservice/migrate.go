package main

// The shape of the services' repo/migrate.go: golang-migrate v4 with the
// postgres database driver and the file source, wrapped in the four
// functions the services call. Nothing here knows about schemadiff: the
// directory it runs is whatever `schemadiff generate` wrote, which is the
// point (either runner can apply it, and continue what the other began).

import (
	"errors"
	"fmt"

	"github.com/golang-migrate/migrate/v4"
	// The postgres driver registers the postgres:// and postgresql:// schemes
	// (lib/pq underneath): version table schema_migrations, advisory lock.
	_ "github.com/golang-migrate/migrate/v4/database/postgres"
	// The file source registers file://.
	_ "github.com/golang-migrate/migrate/v4/source/file"
)

// open returns a migrator for the directory (a path, turned into file://)
// and the database URL, exactly as the services build it.
func open(dir, databaseURL string) (*migrate.Migrate, error) {
	m, err := migrate.New("file://"+dir, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("open migrations %s: %w", dir, err)
	}
	return m, nil
}

// closeMigrator closes the source and the database; the first error wins.
func closeMigrator(m *migrate.Migrate, err error) error {
	srcErr, dbErr := m.Close()
	if err != nil {
		return err
	}
	if srcErr != nil {
		return srcErr
	}
	return dbErr
}

// RunMigrations applies every pending up migration. No pending migration is
// not an error (golang-migrate's ErrNoChange).
func RunMigrations(dir, databaseURL string) (err error) {
	m, err := open(dir, databaseURL)
	if err != nil {
		return err
	}
	defer func() { err = closeMigrator(m, err) }()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// RollbackMigration reverts the last applied migration (golang-migrate's
// Steps(-1)).
func RollbackMigration(dir, databaseURL string) (err error) {
	m, err := open(dir, databaseURL)
	if err != nil {
		return err
	}
	defer func() { err = closeMigrator(m, err) }()
	if err := m.Steps(-1); err != nil {
		return fmt.Errorf("migrate rollback: %w", err)
	}
	return nil
}

// MigrateToVersion moves up or down to version (golang-migrate's Migrate).
// Version 0 is not a migration for golang-migrate; use Down for "none".
func MigrateToVersion(dir, databaseURL string, version uint) (err error) {
	m, err := open(dir, databaseURL)
	if err != nil {
		return err
	}
	defer func() { err = closeMigrator(m, err) }()
	if version == 0 {
		err = m.Down()
	} else {
		err = m.Migrate(version)
	}
	if err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate to %d: %w", version, err)
	}
	return nil
}

// GetMigrationVersion returns the applied version and the dirty flag;
// version 0 with ok=false when nothing is applied (golang-migrate's ErrNilVersion).
func GetMigrationVersion(dir, databaseURL string) (version uint, dirty bool, ok bool, err error) {
	m, err := open(dir, databaseURL)
	if err != nil {
		return 0, false, false, err
	}
	defer func() { err = closeMigrator(m, err) }()
	version, dirty, err = m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, false, nil
	}
	if err != nil {
		return 0, false, false, fmt.Errorf("migrate version: %w", err)
	}
	return version, dirty, true, nil
}

// ForceVersion records version as applied and clean without running
// anything (golang-migrate's Force; -1 means none).
func ForceVersion(dir, databaseURL string, version int) (err error) {
	m, err := open(dir, databaseURL)
	if err != nil {
		return err
	}
	defer func() { err = closeMigrator(m, err) }()
	if err := m.Force(version); err != nil {
		return fmt.Errorf("migrate force %d: %w", version, err)
	}
	return nil
}
