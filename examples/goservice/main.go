// Command goservice starts the way the team's Go services start: it applies
// pending migrations with golang-migrate, then (here) exits. Flags choose the
// other operations of repo/migrate.go, for operators and for schemadiff's
// interoperability tests.
//
//	goservice -dir generated/cortex -db "$CORTEX_DATABASE_URL"            # up (start-up)
//	goservice -dir ... -db ... -rollback                                  # one step down
//	goservice -dir ... -db ... -goto 3                                    # up or down to 3 (0: none)
//	goservice -dir ... -db ... -version                                   # prints "3" or "3 (dirty)" or "none"
//	goservice -dir ... -db ... -force 3                                   # -1: none
//
// The URL defaults to $DATABASE_URL. Exit 0 on success, 1 on any error
// (golang-migrate's message on stderr).
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	dir := flag.String("dir", "migrations", "migration directory (golang-migrate file source)")
	db := flag.String("db", os.Getenv("DATABASE_URL"), "database URL (postgres://...); default $DATABASE_URL")
	rollback := flag.Bool("rollback", false, "revert the last applied migration")
	gotoVersion := flag.Int("goto", -1, "migrate up or down to this version (0: none)")
	version := flag.Bool("version", false, "print the applied version and exit")
	force := flag.Int("force", -2, "record this version without running anything (-1: none)")
	flag.Parse()
	if *db == "" {
		fmt.Fprintln(os.Stderr, "goservice: no database URL: give -db or set DATABASE_URL")
		os.Exit(1)
	}

	var err error
	switch {
	case *version:
		var v uint
		var dirty, ok bool
		v, dirty, ok, err = GetMigrationVersion(*dir, *db)
		if err == nil {
			switch {
			case !ok:
				fmt.Println("none")
			case dirty:
				fmt.Printf("%d (dirty)\n", v)
			default:
				fmt.Println(v)
			}
		}
	case *force != -2:
		err = ForceVersion(*dir, *db, *force)
	case *rollback:
		err = RollbackMigration(*dir, *db)
	case *gotoVersion >= 0:
		err = MigrateToVersion(*dir, *db, uint(*gotoVersion))
	default:
		err = RunMigrations(*dir, *db)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "goservice:", err)
		os.Exit(1)
	}
}
