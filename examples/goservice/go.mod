module example.com/goservice

go 1.25.11

require github.com/golang-migrate/migrate/v4 v4.20.1

require github.com/lib/pq v1.10.9 // indirect
