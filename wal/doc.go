// Package wal holds what a base backup needs to know about write-ahead log:
// the LSN type every package of this module uses (printed "X/Y"), LSN and
// segment arithmetic for any segment size, segment and history file
// names, timeline history parsing (pure functions), and a physical WAL
// receiver that streams the WAL a backup needs over a second replication
// connection and spools it to disk as whole segments.
package wal
